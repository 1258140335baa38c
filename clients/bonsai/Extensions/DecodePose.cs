using System;
using System.ComponentModel;
using System.Reactive.Linq;
using Bonsai;
using NetMQ;

/// <summary>
/// Decodes [topic, msgpack] stream messages into <see cref="Pose"/> objects; messages of other
/// topics are skipped. A pose of another schema version stops the workflow with an error.
/// </summary>
[Description("Decodes realtime-pose pose messages (v1) into Pose objects.")]
public class DecodePose : Transform<NetMQMessage, Pose>
{
    public override IObservable<Pose> Process(IObservable<NetMQMessage> source)
    {
        return source
            .Where(message => message.FrameCount == 2 && message[0].ConvertToString() == "pose")
            .Select(message => Pose.FromPayload(MsgPack.Decode(message[1].ToByteArray())));
    }
}

using System;
using System.ComponentModel;
using System.Reactive.Disposables;
using System.Reactive.Linq;
using System.Threading.Tasks;
using Bonsai;
using NetMQ;
using NetMQ.Sockets;

/// <summary>
/// A SUB socket on the realtime-pose stream, with CURVE when key files are given (Bonsai.ZeroMQ's
/// Subscriber has no CURVE options). Emits each [topic, payload] message.
/// </summary>
[Description("Subscribes to a realtime-pose stream (CURVE when both key files are given).")]
public class CurveSubscriber : Source<NetMQMessage>
{
    public CurveSubscriber()
    {
        Address = "tcp://127.0.0.1:5555";
        Topic = "pose";
    }

    [Description("The rig's stream endpoint, e.g. tcp://rig-pc:5555.")]
    public string Address { get; set; }

    [Description("Topic prefix to subscribe to: pose, event, status, meta or frame.")]
    public string Topic { get; set; }

    [Description("This client's .key_secret file (pyzmq certificate); empty for a loopback rig without CURVE.")]
    [Editor("Bonsai.Design.OpenFileNameEditor, Bonsai.Design", DesignTypes.UITypeEditor)]
    public string ClientSecretKeyFile { get; set; }

    [Description("The rig's public rig.key file; empty for a loopback rig without CURVE.")]
    [Editor("Bonsai.Design.OpenFileNameEditor, Bonsai.Design", DesignTypes.UITypeEditor)]
    public string ServerPublicKeyFile { get; set; }

    public override IObservable<NetMQMessage> Generate()
    {
        return Observable.Create<NetMQMessage>(observer =>
        {
            var subscriber = new SubscriberSocket();
            try
            {
                subscriber.Options.Linger = TimeSpan.Zero;
                CurveClient.Apply(subscriber, ClientSecretKeyFile, ServerPublicKeyFile);
                subscriber.Connect(Address);
                subscriber.Subscribe(Topic ?? string.Empty);
            }
            catch
            {
                subscriber.Dispose();
                throw;
            }
            var poller = new NetMQPoller { subscriber };
            subscriber.ReceiveReady += (sender, e) =>
            {
                NetMQMessage message = null;
                while (e.Socket.TryReceiveMultipartMessage(ref message))
                {
                    observer.OnNext(message);
                    message = null;
                }
            };
            poller.RunAsync();
            return Disposable.Create(() => Task.Run(() =>
            {
                poller.Dispose();
                subscriber.Dispose();
            }));
        });
    }
}

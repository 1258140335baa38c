using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Reactive.Linq;
using Bonsai;
using NetMQ;
using NetMQ.Sockets;

/// <summary>The reply to one control request (docs/protocol.md, "Control requests").</summary>
public class ControlReply
{
    public bool Ok { get; internal set; }

    /// <summary>Why the request failed (the rig's error, or no reply in time); null when Ok.</summary>
    public string Error { get; internal set; }

    /// <summary>The reply map (e.g. t_ns and wall_offset_ns for ping); empty when no reply came.</summary>
    public IDictionary<string, object> Fields { get; internal set; }

    public override string ToString()
    {
        return Ok ? "ok" : "failed: " + Error;
    }
}

/// <summary>
/// Sends one control request for each input (any type: a Timer, a key press, a rule) on a REQ
/// socket, with CURVE when key files are given, and emits the reply. A request that gets no reply
/// within TimeoutMs gives Ok = false, and the next one uses a fresh socket (a REQ socket whose
/// reply never came cannot send again).
/// </summary>
[Combinator]
[Description("Sends a realtime-pose control request (e.g. ping) for each input and emits the reply.")]
[WorkflowElementCategory(ElementCategory.Transform)]
public class ControlRequest
{
    public ControlRequest()
    {
        Address = "tcp://127.0.0.1:5556";
        Command = "ping";
        TimeoutMs = 2000;
    }

    [Description("The rig's control endpoint, e.g. tcp://rig-pc:5556.")]
    public string Address { get; set; }

    [Description("The cmd to send: ping, meta, status, rules, rule_enable, rule_disable, record_start, record_stop, ...")]
    public string Command { get; set; }

    [Description("Sent as 'name' when set (rule_enable, rule_disable).")]
    public string Name { get; set; }

    [Description("The session's control token, when it was started with one.")]
    public string Token { get; set; }

    [Description("How long to wait for the rig to take the request, and again for its reply.")]
    public int TimeoutMs { get; set; }

    [Description("This client's .key_secret file (pyzmq certificate); empty for a loopback rig without CURVE.")]
    [Editor("Bonsai.Design.OpenFileNameEditor, Bonsai.Design", DesignTypes.UITypeEditor)]
    public string ClientSecretKeyFile { get; set; }

    [Description("The rig's public rig.key file; empty for a loopback rig without CURVE.")]
    [Editor("Bonsai.Design.OpenFileNameEditor, Bonsai.Design", DesignTypes.UITypeEditor)]
    public string ServerPublicKeyFile { get; set; }

    public IObservable<ControlReply> Process<TSource>(IObservable<TSource> source)
    {
        return Observable.Using(
            () => new Connection(this),
            connection => source.Select(input => connection.Request(BuildRequest())));
    }

    IDictionary<string, object> BuildRequest()
    {
        var request = new Dictionary<string, object> { { "cmd", Command } };
        if (!string.IsNullOrEmpty(Name)) request["name"] = Name;
        if (!string.IsNullOrEmpty(Token)) request["token"] = Token;
        return request;
    }

    // One REQ socket, replaced after a request that timed out.
    sealed class Connection : IDisposable
    {
        readonly ControlRequest settings;
        RequestSocket socket;

        public Connection(ControlRequest settings)
        {
            this.settings = settings;
        }

        public ControlReply Request(IDictionary<string, object> request)
        {
            var timeout = TimeSpan.FromMilliseconds(settings.TimeoutMs);
            if (socket == null) socket = Open();
            if (!socket.TrySendFrame(timeout, MsgPack.Encode(request)))
            {
                Dispose();
                return Failed(string.Format("could not send to {0} within {1} ms (is the session running, and are these its keys?)",
                    settings.Address, settings.TimeoutMs));
            }
            byte[] reply;
            if (!socket.TryReceiveFrameBytes(timeout, out reply))
            {
                Dispose();
                return Failed(string.Format("no reply from {0} within {1} ms (is the session running, and are these its keys?)",
                    settings.Address, settings.TimeoutMs));
            }
            var fields = MsgPack.Decode(reply) as IDictionary<string, object>;
            if (fields == null) return Failed("the reply is not a msgpack map");
            object ok, error;
            fields.TryGetValue("ok", out ok);
            fields.TryGetValue("error", out error);
            return new ControlReply { Ok = ok is bool && (bool)ok, Error = error as string, Fields = fields };
        }

        RequestSocket Open()
        {
            var opened = new RequestSocket();
            try
            {
                opened.Options.Linger = TimeSpan.Zero;
                CurveClient.Apply(opened, settings.ClientSecretKeyFile, settings.ServerPublicKeyFile);
                opened.Connect(settings.Address);
                return opened;
            }
            catch
            {
                opened.Dispose();
                throw;
            }
        }

        static ControlReply Failed(string error)
        {
            return new ControlReply { Ok = false, Error = error, Fields = new Dictionary<string, object>() };
        }

        public void Dispose()
        {
            if (socket != null)
            {
                socket.Dispose();
                socket = null;
            }
        }
    }
}

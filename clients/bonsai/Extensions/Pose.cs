using System;
using System.Collections.Generic;
using System.Globalization;

/// <summary>One keypoint of one animal: frame pixels (origin top-left) and likelihood 0–1.</summary>
public struct Keypoint
{
    public Keypoint(double x, double y, double likelihood)
        : this()
    {
        X = x;
        Y = y;
        Likelihood = likelihood;
    }

    public double X { get; private set; }

    public double Y { get; private set; }

    public double Likelihood { get; private set; }

    /// <summary>False where the keypoint was not found (the stream sends NaN).</summary>
    public bool Found
    {
        get { return !double.IsNaN(X) && !double.IsNaN(Y); }
    }

    public override string ToString()
    {
        return string.Format(CultureInfo.InvariantCulture, "({0:F1}, {1:F1}, p={2:F2})", X, Y, Likelihood);
    }
}

/// <summary>A realtime-pose v1 <c>pose</c> message (docs/protocol.md, "pose").</summary>
public class Pose
{
    public const int SchemaVersion = 1;

    /// <summary>Message number: +1 per published pose; a jump means poses were lost for this subscriber.</summary>
    public long Seq { get; private set; }

    /// <summary>Camera frame the pose comes from.</summary>
    public long FrameIndex { get; private set; }

    /// <summary>Capture time, monotonic nanoseconds of the publishing host.</summary>
    public long TCaptureNs { get; private set; }

    /// <summary>Time the rig handed the message to ZeroMQ, same clock.</summary>
    public long TPublishNs { get; private set; }

    /// <summary>[animal][keypoint], keypoints in the order of <c>meta.keypoints</c>.</summary>
    public Keypoint[][] Keypoints { get; private set; }

    public int AnimalCount
    {
        get { return Keypoints.Length; }
    }

    public int KeypointCount
    {
        get { return Keypoints.Length == 0 ? 0 : Keypoints[0].Length; }
    }

    /// <summary>The whole decoded map: latency_ns, predicted, camera fields, keys added later.</summary>
    public IDictionary<string, object> Payload { get; private set; }

    /// <summary>Reads a decoded <c>pose</c> payload; throws for another schema version or a malformed pose.</summary>
    public static Pose FromPayload(object decoded)
    {
        var map = decoded as IDictionary<string, object>;
        if (map == null) throw new FormatException("pose payload is not a msgpack map");
        var version = Integer(map, "v");
        if (version != SchemaVersion)
        {
            throw new NotSupportedException(string.Format(
                "pose has schema version {0}; this workflow reads version {1}: update clients/bonsai", version, SchemaVersion));
        }
        return new Pose
        {
            Seq = Integer(map, "seq"),
            FrameIndex = Integer(map, "frame_index"),
            TCaptureNs = Integer(map, "t_capture_ns"),
            TPublishNs = map.ContainsKey("t_publish_ns") ? Integer(map, "t_publish_ns") : 0,
            Keypoints = ReadKeypoints(map),
            Payload = map,
        };
    }

    static long Integer(IDictionary<string, object> map, string name)
    {
        object value;
        if (!map.TryGetValue(name, out value)) throw new FormatException("pose has no " + name);
        if (!(value is long)) throw new FormatException(string.Format("pose {0} is not an integer: {1}", name, value));
        return (long)value;
    }

    static Keypoint[][] ReadKeypoints(IDictionary<string, object> map)
    {
        object value;
        map.TryGetValue("keypoints", out value);
        var animals = value as object[];
        if (animals == null) throw new FormatException("pose keypoints is not an array");
        var result = new Keypoint[animals.Length][];
        for (int a = 0; a < animals.Length; a++)
        {
            var points = animals[a] as object[];
            if (points == null || (a > 0 && points.Length != result[0].Length))
            {
                throw new FormatException(string.Format("pose keypoints: animal {0} is not like animal 0", a));
            }
            result[a] = new Keypoint[points.Length];
            for (int k = 0; k < points.Length; k++)
            {
                var xyp = points[k] as object[];
                if (xyp == null || xyp.Length != 3)
                {
                    throw new FormatException(string.Format("pose keypoints: animal {0} keypoint {1} is not [x, y, likelihood]", a, k));
                }
                result[a][k] = new Keypoint(Number(xyp[0]), Number(xyp[1]), Number(xyp[2]));
            }
        }
        return result;
    }

    static double Number(object value)
    {
        if (value is double) return (double)value;
        if (value is long) return (long)value;
        throw new FormatException("pose keypoint value is not a number: " + value);
    }
}

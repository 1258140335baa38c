using System;
using System.ComponentModel;
using System.Reactive.Linq;
using Bonsai;

/// <summary>Picks one keypoint of one animal from each pose.</summary>
[Description("Selects keypoint Index of animal Animal (X, Y in frame pixels, Likelihood).")]
public class SelectKeypoint : Transform<Pose, Keypoint>
{
    [Description("Animal row, 0 for single-animal models.")]
    public int Animal { get; set; }

    [Description("Keypoint index, in the order of meta.keypoints.")]
    public int Index { get; set; }

    public override IObservable<Keypoint> Process(IObservable<Pose> source)
    {
        return source.Select(pose =>
        {
            if (Animal < 0 || Animal >= pose.AnimalCount || Index < 0 || Index >= pose.KeypointCount)
            {
                throw new ArgumentOutOfRangeException("Index", string.Format(
                    "animal {0} keypoint {1}: the pose has {2} animals of {3} keypoints",
                    Animal, Index, pose.AnimalCount, pose.KeypointCount));
            }
            return pose.Keypoints[Animal][Index];
        });
    }
}

using System;
using System.ComponentModel;
using System.Reactive.Linq;
using Bonsai;

/// <summary>Counts of a pose stream as this subscriber saw it.</summary>
public class SeqTally
{
    public long Received { get; internal set; }

    /// <summary>Jumps in seq: runs of poses lost for this subscriber.</summary>
    public long Gaps { get; internal set; }

    /// <summary>Poses lost: the jumps added up.</summary>
    public long Missing { get; internal set; }

    /// <summary>Times seq went down: the session restarted.</summary>
    public long Restarts { get; internal set; }

    public long FirstSeq { get; internal set; }

    public long LastSeq { get; internal set; }

    public override string ToString()
    {
        return string.Format("received {0}, gaps {1} ({2} missing), restarts {3}, seq {4}..{5}",
            Received, Gaps, Missing, Restarts, FirstSeq, LastSeq);
    }
}

/// <summary>Emits, after each pose, the running count of poses, gaps and restarts in seq.</summary>
[Description("Counts received poses and the gaps in their seq numbers.")]
public class CountSeqGaps : Transform<Pose, SeqTally>
{
    public override IObservable<SeqTally> Process(IObservable<Pose> source)
    {
        return Observable.Defer(() =>
        {
            SeqTally tally = null;
            return source.Select(pose =>
            {
                var next = new SeqTally();
                if (tally == null)
                {
                    next.FirstSeq = pose.Seq;
                }
                else
                {
                    next.FirstSeq = tally.FirstSeq;
                    next.Gaps = tally.Gaps;
                    next.Missing = tally.Missing;
                    next.Restarts = tally.Restarts;
                    next.Received = tally.Received;
                    if (pose.Seq > tally.LastSeq + 1)
                    {
                        next.Gaps += 1;
                        next.Missing += pose.Seq - tally.LastSeq - 1;
                    }
                    else if (pose.Seq <= tally.LastSeq)
                    {
                        next.Restarts += 1;
                    }
                }
                next.Received += 1;
                next.LastSeq = pose.Seq;
                tally = next;
                return next;
            });
        });
    }
}

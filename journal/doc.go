// Package journal keeps a run's directory: the event log, checkpoints, a lock
// and small result files.
//
// # Run directory
//
// [Create] makes a new run directory and refuses one that already holds a
// run; [Open] reopens one for resuming. Either holds run.lock (an flock) until
// [Run.Close], so two processes never write one run; the second gets
// [ErrLocked] naming the holder's pid and host. [Run.WriteJSON] and
// [WriteFileAtomic] replace files atomically (temp file, fsync, rename, fsync
// of the directory).
//
// # Event log
//
// The log is the run's write-ahead record. [Run.NewLog] starts a segment,
// events-NNNN.jsonl.zst: JSON lines written by zerolog into zstd frames.
// Every job segment gets its own file; a segment is never appended to after
// a crash, since a cut zstd frame hides whatever would follow it. [Log.Event]
// starts an event with time (RFC 3339 in ms, UTC), event and run; the log puts
// seq first when the line is written, so seqs increase strictly in file
// order, across segments too. [Log.Commit] makes everything so far decodable
// from the file even if the process is then killed (kill -9): the encoder
// emits a complete zstd block into the file. [Log.Flush] does that and
// fsyncs, so the events also survive the machine going down. Commit at
// trial boundaries; Flush as often as the machine's crash may cost.
//
// The log never holds NaN or infinities: log a float that may be non-finite
// with [Float] or [Floats], which write null and a key+"_nonfinite" field
// ("NaN", "+Inf", "-Inf"). zerolog's own Float64 would write the string
// "NaN", and Interface fails on such values.
//
// A checkpoint covering everything written closes the current frame (once it
// holds 1 MiB) and the next event starts another; the checkpoint records
// that frame's [Position] (Checkpoint.EventsFrom), and [ReadEventsFrom]
// starts there, so resuming costs what follows the checkpoint, not the
// run's length. [ReadEvents] reads every segment in order. A cut tail — a killed writer, or
// one still writing — is not an error: everything in complete zstd blocks is
// returned and the cut is reported with its file and byte offset. Damage
// inside a segment is an error naming the file.
//
// # Checkpoints
//
// A [Checkpoint] is a snapshot of the search at a position (Seq) in the log:
// resuming loads the newest good one and replays the events after it.
// [Run.SaveCheckpoint] writes checkpoint.zst atomically and keeps the previous
// one as checkpoint.prev.zst; it first flushes the open log up to the
// checkpoint's Seq, so a checkpoint never refers to events not yet on disk.
// [Run.LoadCheckpoint] falls back to the previous checkpoint when the newest
// is damaged and says which file and why. A checkpoint's size depends only on
// its State and Loop, never on how long the run has been going.
//
// File formats, and how to read them with zstdcat and jq: docs/events.md.
package journal

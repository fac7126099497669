// Command nasd searches for neural network architectures on clusters.
//
// Subcommands:
//
//	nasd analyze  summarise a run, export its trial table, write a report; compare runs (docs/analyze.md)
//	nasd corpus   turn plain text into the Penn Treebank layout (docs/data.md)
//	nasd export   write a found network as PyTorch code, with its weights (docs/export.md)
//	nasd jobs     write and submit batch jobs that chain a search across walltime limits (docs/jobs.md)
//	nasd perturb  write the search that trains an architecture's neighbours and repeats of it (docs/perturb.md)
//	nasd search   search for architectures (in-process, or under mpirun or srun)
//	nasd space    describe a search space, sample or validate an architecture
//	nasd train    train and evaluate one architecture on real data
//	nasd version  print the version and build information
//
// Only this package knows about processes, flags and exit codes: exit 0 when
// done, 1 on an error (the message names the file, field and value), 2 on bad
// usage, 3 when a search checkpointed before a deadline or signal, 4 when
// another process holds the run's lock. `nasd <command> -h` lists a command's flags.
package main

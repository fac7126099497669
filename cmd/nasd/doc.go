// Command nasd searches for neural network architectures on clusters.
//
// Subcommands:
//
//	nasd corpus   turn plain text into the Penn Treebank layout (docs/data.md)
//	nasd export   write a found network as PyTorch code, with its weights (docs/export.md)
//	nasd space    describe a search space, sample or validate an architecture
//	nasd train    train and evaluate one architecture on real data
//	nasd version  print the version and build information
//
// Only this package knows about processes, flags and exit codes: exit 0 when
// done, 1 on an error (the message names the file, field and value), 2 on bad
// usage. `nasd <command> -h` lists a command's flags.
package main

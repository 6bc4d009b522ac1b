"""What a training run leaves in its workdir, and reading it back: the model card
(``model.json``), the results file, checkpoints, exported weights files, the alignments file,
and loading a trained model from any of them, with the input settings its card records
(:mod:`aslx.run.reader`, what every inference tool reads a model through). Training writes
these; export, predict, align and report read them, and none of those needs
:mod:`aslx.training`."""

"""Tiny preset overrides shared by the speech tests (a uniquely named module: `conftest` is ambiguous)."""

TINY_CT = ["model.kind=\"compressive\"", "model.window=64", "model.transformer.d_model=32",
           "model.transformer.n_layers=2", "model.transformer.n_heads=2", "model.transformer.d_ff=64",
           "model.transformer.mem_len=32", "model.transformer.cmem_len=16", "model.transformer.compression_rate=4"]
TINY_TXL = ["model.kind=\"transformerxl\"", "model.window=64", "model.transformer.d_model=32",
            "model.transformer.n_layers=2", "model.transformer.n_heads=2", "model.transformer.d_ff=64",
            "model.transformer.mem_len=48", "model.transformer.cmem_len=0"]
TINY_WN = ["model.kind=\"wavenet\"", "model.window=64", "model.wavenet.n_layers=6", "model.wavenet.dilation_cycle=3",
           "model.wavenet.residual_channels=16", "model.wavenet.dilation_channels=16",
           "model.wavenet.skip_channels=16"]
TINY_TRAIN = ["train.batch_size=4", "train.lr=3e-3", "train.warmup_steps=2", "train.grad_clip=1.0",
              "train.progress=false", "train.log_every=1", "train.checkpoint_every=0", "train.eval_every=0",
              "eval.batch_size=4", "eval.max_seconds=0.5"]
TINY_SYNTH = ["data.dataset=\"synthetic-speech\"", "data.path=\"\"", "data.synth_files=12", "data.synth_seconds=0.6",
              "data.synth_speakers=3", "data.recur_gap_s=0.2"]

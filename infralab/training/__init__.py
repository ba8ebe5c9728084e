"""Training and fine-tuning on the kit's own data, and what a real training run costs.

``data``: the fine-tuning set built from the corpus, with provenance and content hashes.
``head``: a classifier head trained with plain numpy on frozen MiniLM embeddings, with
checkpoints that resume bit for bit. ``flops``: the arithmetic of training compute.
``bill``: GPU prices, the 6 x parameters x tokens rule, spot interruptions and the
reserved-capacity trap. The lesson's Altair charts are :mod:`infralab.charts.training`.
"""

"""Serving: the embeddings API, micro-batching, a process launcher with cold-start timing, a load generator.

Import from the submodules (``infralab.serving.app``, ``.launcher``, ``.loadgen``); this
package itself imports nothing heavy, so a launched child process starts fast.
"""

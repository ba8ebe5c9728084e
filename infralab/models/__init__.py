"""Model engines on ONNX Runtime: the encoder (embeddings), the decoder (LLM), synthetic graphs."""

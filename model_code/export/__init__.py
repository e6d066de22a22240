"""Export of the serving artifact: GGUF files for llama.cpp, their load check and their quantization quality."""

"""The local vision-language model (llama.cpp): its files and set-up, the helper process
it runs in, and JSON answers held to a schema."""

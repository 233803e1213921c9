/* A model directory with seeded random weights for any BERT config, so that bert-base-sized
 * speed work and tests need no download. Not part of the daemon: built into the
 * make-random-model tool and the tests. */
#ifndef RANDOM_MODEL_H
#define RANDOM_MODEL_H

/* Writes out_dir/model.safetensors (F32, HF tensor names, shapes from config_path) and
 * copies config.json, plus vocab.txt and tokenizer_config.json when they sit beside it.
 * Returns the number of parameters, or -1 with err. */
long random_model_write(const char *config_path, const char *out_dir, unsigned long long seed, char *err);

#endif

/* Which version of the model a daemon serves (issue 20): the name every /predict answer, /info,
 * the metrics and the request log carry, so that a user who retrains can tell which model
 * answered. */
#ifndef MODEL_VERSION_H
#define MODEL_VERSION_H

#define MODEL_VERSION_MAX 64 /* characters */

/* The version, from the first of:
 *   given          --model-version (NULL: none);
 *   dir/VERSION    its first line, surrounding whitespace dropped (a file that is there but empty,
 *                  too long or not a plain name is an error naming it, not a silent fallback);
 *   the weights    the first 12 hex digits of dir/model.safetensors' sha256, computed now, so
 *                  that the version is known before the model serves; its whole hex is then put
 *                  in sha256_hex (else sha256_hex is "").
 * A version is 1-64 characters of [A-Za-z0-9._:+-]: it goes into HTTP headers, Prometheus label
 * values and file names as it is. -1 with err naming the source and the problem. */
int model_version_resolve(const char *given, const char *dir, char version[MODEL_VERSION_MAX + 1],
                          char sha256_hex[65], char *err);

/* 0 if s is a valid version (see above), else -1 with err saying why; source names it. */
int model_version_check(const char *s, const char *source, char *err);

#endif

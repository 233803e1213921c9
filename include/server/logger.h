/* One line per event on stderr, as `key=value` text or as a JSON object, always with the time
 * and the event name first. */
#ifndef LOGGER_H
#define LOGGER_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Writes the fields (a cJSON object; strings, numbers and booleans; consumed) as one line. */
void log_event(bool json, const char *event, cJSON *fields);

#endif

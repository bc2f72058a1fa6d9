/* Asks the real libxlutil how it reads whole xl.cfg files.
 *
 * Each stdin line is "<path>\t<key> <key> ...".  The file is read with
 * xlu_cfg_init + xlu_cfg_readfile (the config is named by its path, as xl
 * names it), and one JSON line comes back:
 *   {"rc": <readfile's errno>, "report": <what libxlutil printed>,
 *    "keys": [ per key, only when the file parsed:
 *      {"key": ..., "string_rc": ..., "string": ..., "string_report": ...,
 *       "list_rc": ..., "items": [xlu_cfg_get_listitem for each entry],
 *       "tree": <the value as nested arrays, from xlu_cfg_get_listitem2>,
 *       "list_report": ...,
 *       "long_rc": ..., "long": ..., "long_report": ...} ]}
 * libxlutil says reading a config after a failed parse is undefined, so
 * then "keys" is empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxlutil.h>

static FILE *report;

static void put_string(const char *s)
{
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Takes what the library printed since the last call, and forgets it. */
static void put_report(void)
{
    long len;
    char *text;

    fflush(report);
    len = ftell(report);
    text = calloc(1, len + 1);
    rewind(report);
    if (len && fread(text, 1, len, report) != (size_t)len)
        text[0] = 0;
    rewind(report);
    if (ftruncate(fileno(report), 0))
        perror("ftruncate");
    put_string(text);
    free(text);
}

static void put_tree(const XLU_Config *cfg, XLU_ConfigValue *value)
{
    XLU_ConfigList *list;
    XLU_ConfigValue *item;
    char *s;
    int i;

    if (xlu_cfg_value_type(value) == XLU_STRING) {
        xlu_cfg_value_get_string(cfg, value, &s, 1);
        put_string(s);
        return;
    }
    xlu_cfg_value_get_list(cfg, value, &list, 1);
    putchar('[');
    for (i = 0; (item = xlu_cfg_get_listitem2(list, i)); i++) {
        if (i)
            putchar(',');
        put_tree(cfg, item);
    }
    putchar(']');
}

static void put_key(const XLU_Config *cfg, const char *key)
{
    const char *string = NULL;
    XLU_ConfigList *list = NULL;
    XLU_ConfigValue *item;
    int entries = 0, rc, i;
    long number = 0;

    fputs("{\"key\": ", stdout);
    put_string(key);

    rc = xlu_cfg_get_string(cfg, key, &string, 0);
    printf(", \"string_rc\": %d, \"string\": ", rc);
    put_string(rc ? NULL : string);
    fputs(", \"string_report\": ", stdout);
    put_report();

    rc = xlu_cfg_get_list(cfg, key, &list, &entries, 0);
    printf(", \"list_rc\": %d, \"items\": ", rc);
    if (rc) {
        fputs("null, \"tree\": null", stdout);
    } else {
        putchar('[');
        for (i = 0; i < entries; i++) {
            if (i)
                putchar(',');
            put_string(xlu_cfg_get_listitem(list, i));
        }
        fputs("], \"tree\": [", stdout);
        for (i = 0; (item = xlu_cfg_get_listitem2(list, i)); i++) {
            if (i)
                putchar(',');
            put_tree(cfg, item);
        }
        putchar(']');
    }
    fputs(", \"list_report\": ", stdout);
    put_report();

    rc = xlu_cfg_get_long(cfg, key, &number, 0);
    printf(", \"long_rc\": %d, \"long\": ", rc);
    if (rc)
        fputs("null", stdout);
    else
        printf("%ld", number);
    fputs(", \"long_report\": ", stdout);
    put_report();
    putchar('}');
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    report = tmpfile();
    if (!report) { perror("tmpfile"); return 1; }

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        XLU_Config *cfg;
        char *keys, *key, *saveptr = NULL;
        int rc, first = 1;

        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        keys = strchr(line, '\t');
        if (keys)
            *keys++ = 0;

        cfg = xlu_cfg_init(report, line);
        if (!cfg) { perror("xlu_cfg_init"); return 1; }
        rc = xlu_cfg_readfile(cfg, line);
        printf("{\"rc\": %d, \"report\": ", rc);
        put_report();
        fputs(", \"keys\": [", stdout);
        for (key = rc || !keys ? NULL : strtok_r(keys, " ", &saveptr); key;
             key = strtok_r(NULL, " ", &saveptr)) {
            if (!first)
                fputs(", ", stdout);
            first = 0;
            put_key(cfg, key);
        }
        fputs("]}\n", stdout);
        fflush(stdout);
        xlu_cfg_destroy(cfg);
    }
    free(line);
    return 0;
}

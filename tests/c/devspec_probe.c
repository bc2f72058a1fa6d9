/* Asks the real libxlutil and libxenlight how they read device strings.
 *
 * Each stdin line is "<kind>\t<text>", kind one of:
 *   disk  xlu_disk_parse on the text (one spec string)
 *   rate  xlu_vif_parse_rate on the text
 *   vdev  libxl__device_disk_dev_number (only when built with DEV_NUMBER,
 *         since that function lives only in the static libxenlight)
 *   uuid  libxl_uuid_from_string
 * and gets one JSON line back: the return code, what the library reported
 * (its `report' stream), and libxl's own JSON of the resulting struct.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxl.h>
#include <libxlutil.h>

#ifdef DEV_NUMBER
int libxl__device_disk_dev_number(const char *virtpath, int *pdisk,
                                  int *ppartition);
#endif

static FILE *report;

static void put_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
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

/* libxl pretty-prints; its newlines are layout only (yajl escapes those
 * inside strings), so flattening keeps the JSON valid and on one line. */
static void put_flat_json(char *json)
{
    char *p;

    if (!json) {
        fputs("null", stdout);
        return;
    }
    for (p = json; *p; p++)
        if (*p == '\n')
            *p = ' ';
    fputs(json, stdout);
    free(json);
}

int main(void)
{
    XLU_Config *cfg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    report = tmpfile();
    if (!report) { perror("tmpfile"); return 1; }
    cfg = xlu_cfg_init(report, "probe");
    if (!cfg) { perror("xlu_cfg_init"); return 1; }

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        char *text;

        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        text = strchr(line, '\t');
        if (!text)
            continue;
        *text++ = 0;

        if (!strcmp(line, "disk")) {
            libxl_device_disk disk;
            const char *specs[1] = { text };
            int rc;

            libxl_device_disk_init(&disk);
            rc = xlu_disk_parse(cfg, 1, specs, &disk);
            printf("{\"rc\": %d, \"report\": ", rc);
            put_report();
            fputs(", \"json\": ", stdout);
            /* The context is only used to log a failure to build the
             * JSON, and there is no Xen here to open one against. */
            put_flat_json(libxl_device_disk_to_json(NULL, &disk));
            libxl_device_disk_dispose(&disk);
        } else if (!strcmp(line, "rate")) {
            libxl_device_nic nic;
            int rc;

            libxl_device_nic_init(&nic);
            rc = xlu_vif_parse_rate(cfg, text, &nic);
            printf("{\"rc\": %d, \"report\": ", rc);
            put_report();
            printf(", \"bytes\": %llu, \"usecs\": %u, \"json\": ",
                   (unsigned long long)nic.rate_bytes_per_interval,
                   nic.rate_interval_usecs);
            put_flat_json(libxl_device_nic_to_json(NULL, &nic));
            libxl_device_nic_dispose(&nic);
        } else if (!strcmp(line, "vdev")) {
#ifdef DEV_NUMBER
            printf("{\"devid\": %d", libxl__device_disk_dev_number(text, NULL, NULL));
#else
            printf("{\"devid\": null");
#endif
        } else if (!strcmp(line, "uuid")) {
            libxl_uuid uuid;
            int rc;

            libxl_uuid_clear(&uuid);
            rc = libxl_uuid_from_string(&uuid, text);
            printf("{\"rc\": %d, \"uuid\": ", rc);
            if (rc) {
                fputs("null", stdout);
            } else {
                char buf[64];
                snprintf(buf, sizeof(buf), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(uuid));
                put_string(buf);
            }
        } else {
            continue;
        }
        fputs("}\n", stdout);
        fflush(stdout);
    }
    free(line);
    xlu_cfg_destroy(cfg);
    return 0;
}

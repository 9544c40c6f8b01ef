/* entk-show: frames as text, for people and for awk/gnuplot/jq at the end of a pipeline. */
#include "core/blasenv.h"
#include "core/cli.h"
#include "core/err.h"
#include "core/frame.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "Usage: entk-show [--name NAME] [--data | --values | --fields F1,F2,...] [FILE|-]...\n"
    "Prints a frame stream as JSON lines (one per frame, the header first) on stdout (or -o FILE).\n";

static const char *examples =
    "Examples:\n"
    "  entk-modadd -p 5 | entk-show\n"
    "  entk-show --name metrics --fields epoch,loss,test_acc metrics.frames\n"
    "  entk-show --name eigenvalues --values eig.frames | head\n"
    "  export OPENBLAS_CORETYPE=$(entk-show --blas)\n";

/* A string as one TSV field: tab, line break and backslash escaped as \\t, \\n, \\r and \\\\, so
 * every frame stays one line of its fields. */
static void put_tsv(FILE *out, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *e = p[i] == '\t' ? "\\t" : p[i] == '\n' ? "\\n" : p[i] == '\r' ? "\\r" : p[i] == '\\' ? "\\\\" : NULL;
        if (e) fputs(e, out);
        else fputc(p[i], out);
    }
}

int main(int argc, char **argv) {
    cli_start(argc, argv);
    const char *name = NULL, *fields = NULL;
    int data = 0, values = 0, check = 0, blas = 0;
    /* entk-show writes text, not frames: no option enters a key */
    cli_opt opts[] = {
        {"name", 0, CLI_STR, &name, "NAME", CLI_NOKEY, .help = "only frames called NAME"},
        {"data", 0, CLI_FLAG, &data, NULL, CLI_NOKEY, .help = "include tensor values in the JSON (\"data\": [...], row-major)"},
        {"values", 0, CLI_FLAG, &values, NULL, CLI_NOKEY, .help = "print tensor values as text, one row per line (last axis across),\nnothing else"},
        {"fields", 0, CLI_STR, &fields, "F,...", CLI_NOKEY,
         .help = "print the named meta fields of each frame as a tab-separated line\n"
                 "(tabs, line breaks and backslashes in strings as \\t, \\n, \\r, \\\\)"},
        {"check", 0, CLI_FLAG, &check, NULL, CLI_NOKEY, .help = "validate the streams and print nothing (exit status tells)"},
        {"blas", 0, CLI_FLAG, &blas, NULL, CLI_NOKEY,
         .help = "print the OpenBLAS kernel family entk runs with and exit (pipelines\n"
                 "export it as OPENBLAS_CORETYPE so their programs need not re-execute;\n"
                 "blasenv.h)"},
        CLI_TABLE_END,
    };
    cli_spec spec = {.usage = usage, .examples = examples, .opts = opts};
    int first = cli_parse(&spec, argc, argv);
    if (blas) {
        puts(blasenv_corename());
        return 0;
    }
    cli_common co = spec.co;
    outfile o;
    outfile_open(&o, co.output);
    FILE *out = o.fp;
    int nf = 0;
    char **fl = fields ? cli_split(fields, &nf) : NULL;
    int ninputs = argc - first;
    for (int in = 0; in < (ninputs ? ninputs : 1); in++) {
        frame_reader r;
        frame_reader_open_streams(&r, ninputs ? argv[first + in] : "-");
        do {
            int plain = !values && !fields && !check;
            if (plain && (!name || strcmp(name, r.h.producer) == 0 || strcmp(name, "header") == 0)) {
                /* strings from the input are escaped: the line must stay JSON whatever they hold */
                fprintf(out, "{\"kind\":\"header\",\"name\":");
                print_json_str(out, r.h.producer, strlen(r.h.producer));
                fprintf(out, ",\"version\":");
                print_json_str(out, r.h.version, strlen(r.h.version));
                fprintf(out, ",\"key\":\"%s\",\"args\":[", r.h.key.hex);
                for (int i = 0; i < r.h.argc; i++) {
                    if (i) fputc(',', out);
                    print_json_str(out, r.h.argv[i], strlen(r.h.argv[i]));
                }
                fprintf(out, "],\"inputs\":[");
                for (int i = 0; i < r.h.ninputs; i++) {
                    fprintf(out, "%s{\"name\":", i ? "," : "");
                    print_json_str(out, r.h.input_name[i], strlen(r.h.input_name[i]));
                    fprintf(out, ",\"key\":");
                    print_json_str(out, r.h.input_key[i].hex, strlen(r.h.input_key[i].hex));
                    fputc('}', out);
                }
                fprintf(out, "]}\n");
            }
            frame f;
            while (frame_read(&r, &f)) {
                if (check || (name && strcmp(name, f.name) != 0)) continue;
                int is_t = strcmp(f.kind, "tensor") == 0;
                if (fields) {
                    for (int i = 0; i < nf; i++) {
                        const msgpack_object *o = meta_get(&f.meta, fl[i]);
                        if (i) fputc('\t', out);
                        if (!o) fputs("NA", out);
                        else if (o->type == MSGPACK_OBJECT_STR) put_tsv(out, o->via.str.ptr, o->via.str.size);
                        else msgpack_print_json(out, o);
                    }
                    fputc('\n', out);
                    continue;
                }
                if (values) {
                    if (!is_t) continue;
                    int64_t n = tensor_numel(&f.t), w = f.t.ndim ? f.t.shape[f.t.ndim - 1] : 1;
                    for (int64_t i = 0; i < n; i++) {
                        double v = tensor_get(&f.t, i);
                        if (dtype_is_float(f.t.dt)) fprintf(out, "%.17g", v); else fprintf(out, "%.0f", v);
                        fputc(w && (i + 1) % w == 0 ? '\n' : '\t', out);
                    }
                    continue;
                }
                fprintf(out, "{\"kind\":\"%s\",\"name\":", f.kind);
                print_json_str(out, f.name, strlen(f.name));
                if (is_t) {
                    fprintf(out, ",\"dtype\":\"%s\",\"shape\":[", dtype_name(f.t.dt));
                    for (int i = 0; i < f.t.ndim; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)f.t.shape[i]);
                    fputc(']', out);
                }
                fprintf(out, ",\"meta\":");
                if (f.meta.type == MSGPACK_OBJECT_MAP) msgpack_print_json(out, &f.meta); else fprintf(out, "{}");
                if (is_t && data) {
                    fprintf(out, ",\"data\":[");
                    int64_t n = tensor_numel(&f.t);
                    for (int64_t i = 0; i < n; i++) fprintf(out, dtype_is_float(f.t.dt) ? "%s%.17g" : "%s%.0f", i ? "," : "", tensor_get(&f.t, i));
                    fputc(']', out);
                }
                fprintf(out, "}\n");
            }
        } while (frame_reader_next_stream(&r));
        frame_reader_close(&r);
    }
    outfile_commit(&o);
    return 0;
}

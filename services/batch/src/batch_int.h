/* The mapping's representation, shared by its parser (batch_mapping.c) and the row mapper (batch_row.c). */
#ifndef BATCH_INT_H
#define BATCH_INT_H

#include "batch.h"
#include "batch_reconcile.h"

/* How a cell becomes a JSON value (decided by the schema unless the mapping names one). */
typedef enum conv { CV_AUTO, CV_TEXT, CV_INT, CV_NUMBER, CV_TIME } conv;

/* One step of an event path: "lines[0]" is name "lines", index 0; index -1 for none. */
typedef struct seg {
    char *name;
    int index;
} seg;

/* One mapped field: where it goes in the event, and where its value comes from. */
typedef struct value {
    char *path;      /* as written: "orderCreated.lines[0].qty" (the codec's field paths look the same) */
    seg *segs;       /* the path's steps */
    size_t nsegs;
    int line;        /* its line in the mapping file */
    char *constant;  /* a constant, or NULL */
    char *column;    /* the column as written (a header name, a [columns] name or a number), or NULL */
    long col;        /* the column's 0-based index once bound */
    conv cv;         /* the conversion */
    char *tfmt;      /* CV_TIME: the strptime format (NULL: the cell must already be RFC 3339) */
} value;

/* A [kind NAME] section. */
typedef struct kind {
    char *name;      /* NAME: part of the event ids */
    char *match;     /* the kind column's value that selects it (default NAME) */
    char *type;      /* the event type (payload name), e.g. "orderApproved" */
    int line, match_line, type_line;
    value *v;
    size_t n;
} kind;

/* A [columns] entry. */
typedef struct colname {
    char *name;
    long index;          /* CSV: 0-based column number */
    batch_fixed_col fx;  /* fixed: where it is */
    int line;
} colname;

struct batch_mapping {
    char *file;                 /* the mapping file's name, for messages */
    char *name, *system, *instance;
    int fixed, header;
    char delim;
    char *tfmt;                 /* [import] time_format (NULL: RFC 3339) */
    int zone;                   /* [import] time_zone in seconds east of UTC */
    char *kind_column;          /* [import] kind, or NULL (one kind) */
    int kind_line;
    long kind_col;              /* bound index of the kind column */
    char **skip;                /* kind column values to skip */
    size_t nskip;
    int import_lines[16];       /* the line of each [import] key seen (duplicates) */
    colname *cols;
    size_t ncols;
    batch_fixed_col *fx;        /* fixed: the columns in [columns] order */
    kind *kinds;
    size_t nkinds;
    size_t header_cols;         /* CSV with a header: the number of columns every row must have (0: any) */
    batch_format fmt;
    batch_rec_spec *rec;        /* [reconcile], or NULL (batch_reconcile.h) */
    unsigned flags;             /* batch_mapping_parse_flags's */
};

#endif

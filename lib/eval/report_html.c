/*
 * report.html: one self-contained page (inline CSS and script, overlays as data URIs).
 * Sections: title and run facts, the convention and the HD95 definition, the summary
 * table, SVG box plots per metric, the per-case table (click a header to sort: numeric
 * columns by value with NaN last in both directions, text columns by text), the overlays.
 * The page opened as report.html#sort=COLUMN (or #sort=-COLUMN, descending) starts sorted
 * by that column (its cases.csv name: dice, hd95, case, ...). The script sets
 * data-report-ready="1" on <body> when it has run through, which a headless browser's DOM
 * dump can check.
 */
#include "report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px "
    "solid #ddd}.facts{color:#555}.conv{background:#f6f6f6;padding:8px 12px;border-left:3px "
    "solid #999;font-size:13px}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}"
    "th{background:#f0f0f0}"
    "td.s,th.s{text-align:left}#cases th{cursor:pointer;user-select:none}"
    "#cases th[aria-sort=ascending]::after{content:' \\25B2'}"
    "#cases th[aria-sort=descending]::after{content:' \\25BC'}tr.flag td{background:#fde8e8}"
    ".plots{display:flex;flex-wrap:wrap;gap:8px}.box text{font:11px sans-serif;fill:#222}"
    ".box text.t{font-weight:bold;font-size:12px}.box text.n{fill:#777}"
    ".ov{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;font-size:12px}"
    "figure img{display:block;image-rendering:pixelated;border:1px solid #ccc}"
    "details{margin-top:8px}summary{cursor:pointer;color:#1f4e79}"
    ".sw{display:inline-block;width:14px;height:4px;margin:0 4px 3px 10px;vertical-align:middle}";

static const char script[] =
    "(function(){var t=document.getElementById('cases');if(t){var h=t.tHead.rows[0].cells;"
    "var key=function(td){var v=td.getAttribute('data-v');return v===null?td.textContent:v;};"
    "var sortBy=function(c){var th=h[c],asc=th.getAttribute('aria-sort')!=='ascending';"
    "for(var j=0;j<h.length;j++)h[j].removeAttribute('aria-sort');"
    "th.setAttribute('aria-sort',asc?'ascending':'descending');"
    "var num=th.classList.contains('num'),b=t.tBodies[0];"
    "var rows=Array.prototype.slice.call(b.rows);rows.sort(function(r1,r2){"
    "var x=key(r1.cells[c]),y=key(r2.cells[c]);if(num){x=parseFloat(x);y=parseFloat(y);"
    "var nx=isNaN(x),ny=isNaN(y);if(nx||ny)return nx-ny;return asc?x-y:y-x;}"
    "var o=x<y?-1:x>y?1:0;return asc?o:-o;});"
    "rows.forEach(function(r){b.appendChild(r);});};"
    "for(var i=0;i<h.length;i++)h[i].addEventListener('click',sortBy.bind(null,i));"
    "var m=location.hash.match(/^#sort=(-?)([a-z0-9_]+)$/);if(m)for(var k=0;k<h.length;k++)"
    "if(h[k].getAttribute('data-k')===m[2]){sortBy(k);if(m[1])sortBy(k);}}"
    "document.body.setAttribute('data-report-ready','1');})();";

/* Units shown after a distance metric's name: the run's. */
static const char *unit(const dk_rep_run *r, const char *name) {
    if (strcmp(name, "hd") && strcmp(name, "hd95") && strcmp(name, "assd")) return "";
    return r->opts->metric.unit == DK_UNIT_VOXELS ? " (voxels)" : " (mm)";
}

static void head(dk_sbuf *b, const dk_rep_run *r) {
    dk_sb_puts(b, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>");
    dk_sb_html(b, r->title);
    dk_sb_printf(b, "</title><style>%s</style></head>\n<body>\n<h1>", css);
    dk_sb_html(b, r->title);
    dk_sb_printf(b, "</h1>\n<p class='facts'>%d cases; labels", r->n_cases);
    for (int k = 0; k < r->n_labels; k++) dk_sb_printf(b, " %d", r->labels[k]);
    dk_sb_printf(b, " (%s); NSD tolerance %g %s; predictions <code>",
                 r->labels_given ? "given by the labels option"
                                 : "every non-zero label present in any reference",
                 r->opts->metric.nsd_tol_mm, dk_rep_unit(r));
    dk_sb_html(b, r->opts->pred_dir);
    char src[4200];
    dk_sb_puts(b, "</code>, references <code>");
    dk_sb_html(b, dk_rep_ref_source(src, sizeof src, r->opts));
    dk_sb_puts(b, "</code>");
    if (r->opts->mask_dir) {
        dk_sb_puts(b, ", masks <code>");
        dk_sb_html(b, r->opts->mask_dir);
        dk_sb_puts(b, "</code>");
    }
    dk_sb_puts(b, "; ");
    dk_sb_html(b, dk_version_string());
    dk_sb_puts(b, ".</p>\n");
    for (int k = 0; k < r->n_notes; k++) {
        dk_sb_puts(b, k ? "<li>" : "<h2>Notes</h2>\n<ul class='notes'><li>");
        dk_sb_html(b, r->notes[k]);
        dk_sb_puts(b, k + 1 == r->n_notes ? "</li></ul>\n" : "</li>\n");
    }
    dk_sb_puts(b, "<h2>Convention</h2>\n<p class='conv'>");
    dk_sbuf conv = {0};
    dk_rep_convention(&conv, r->opts->metric.unit);
    dk_sb_html(b, conv.s ? conv.s : "");
    dk_sb_free(&conv);
    dk_sb_puts(b, "<br><b>HD95</b>: ");
    dk_sb_html(b, DK_EVAL_HD95_NAME);
    dk_sb_puts(b, ".</p>\n");
}

/* A value for reading: "–" for NaN, whole numbers from 10^4 up, else 4 significant digits. */
static void fmt(dk_sbuf *b, double x) {
    if (!isfinite(x)) dk_sb_puts(b, isnan(x) ? "–" : x > 0 ? "∞" : "−∞");
    else if (fabs(x) >= 1e4 && fabs(x) < 1e15) dk_sb_printf(b, "%.0f", x);
    else dk_sb_printf(b, "%.4g", x);
}

/* The metrics of the compact summary table. */
static const char *const main_metrics[] = {"dice", "iou", "precision", "recall", "hd95",
                                           "assd", "nsd"};

/* Label × main metric: "mean ± std (median)", then n and flagged. */
static void compact_table(dk_sbuf *b, const dk_rep_run *r, double *vals) {
    size_t nm = sizeof main_metrics / sizeof main_metrics[0];
    dk_sb_puts(b, "<h2>Summary</h2>\n<p class='facts'>mean ± std (median) over the n finite "
                  "values; flagged = cases where exactly one of prediction and reference is "
                  "empty.</p>\n<table><thead><tr><th class='s'>label</th>");
    for (size_t j = 0; j < nm; j++)
        dk_sb_printf(b, "<th>%s%s</th>", main_metrics[j], unit(r, main_metrics[j]));
    dk_sb_puts(b, "<th>n</th><th>flagged</th></tr></thead><tbody>\n");
    for (int k = 0; k < r->n_labels; k++) {
        char lt[96];
        dk_sb_puts(b, "<tr><td class='s'>");
        dk_sb_html(b, dk_rep_label_text(lt, sizeof lt, r, k));
        dk_sb_puts(b, "</td>");
        int n = 0, flagged = 0;
        for (size_t j = 0; j < nm; j++) {
            dk_metric_summary s;
            flagged = dk_rep_values(r, k, dk_rep_find_column(main_metrics[j]), vals);
            dk_metric_summarize(&s, vals, r->n_cases, flagged);
            if (j == 0) n = s.n;
            dk_sb_puts(b, "<td>");
            fmt(b, s.mean);
            dk_sb_puts(b, " ± ");
            fmt(b, s.std);
            dk_sb_puts(b, " (");
            fmt(b, s.median);
            dk_sb_puts(b, ")</td>");
        }
        dk_sb_printf(b, "<td>%d</td><td>%d</td></tr>\n", n, flagged);
    }
    dk_sb_puts(b, "</tbody></table>\n");
}

static void summary_table(dk_sbuf *b, const dk_rep_run *r, double *vals) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    compact_table(b, r, vals);
    dk_sb_puts(b, "<details><summary>Every metric: mean, std, quartiles, range, n, NaN, "
                  "flagged</summary>\n<table><thead><tr><th class='s'>label</th><th class='s'>"
                  "metric</th><th>mean</th><th>std</th><th>median</th><th>q1</th><th>q3</th>"
                  "<th>min</th><th>max</th><th>n</th><th>NaN</th><th>flagged</th></tr>"
                  "</thead><tbody>\n");
    for (int k = 0; k < r->n_labels; k++)
        for (int j = 0; j < nc; j++) {
            dk_metric_summary s;
            dk_metric_summarize(&s, vals, r->n_cases, dk_rep_values(r, k, &cols[j], vals));
            char lt[96];
            dk_sb_puts(b, "<tr><td class='s'>");
            dk_sb_html(b, dk_rep_label_text(lt, sizeof lt, r, k));
            dk_sb_printf(b, "</td><td class='s'>%s%s</td>", dk_rep_col_name(r, &cols[j]),
                         unit(r, cols[j].name));
            const double st[7] = {s.mean, s.std, s.median, s.q1, s.q3, s.min, s.max};
            for (int q = 0; q < 7; q++) {
                dk_sb_puts(b, "<td>");
                fmt(b, s.n > 0 ? st[q] : NAN);
                dk_sb_puts(b, "</td>");
            }
            dk_sb_printf(b, "<td>%d</td><td>%d</td><td>%d</td></tr>\n", s.n, s.nan, s.flagged);
        }
    dk_sb_puts(b, "</tbody></table></details>\n");
}

/* One SVG per metric (the volumes aside), one box per label. */
static dk_status box_plots(dk_sbuf *b, const dk_rep_run *r) {
    int nc, n = r->n_cases, L = r->n_labels;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    double *vals = malloc((size_t)(n ? n : 1) * (size_t)L * sizeof *vals);
    const double **ptr = malloc((size_t)L * sizeof *ptr);
    int *counts = malloc((size_t)L * sizeof *counts);
    char (*names)[72] = malloc((size_t)L * sizeof *names);
    const char **np = malloc((size_t)L * sizeof *np);
    dk_status st = DK_OK;
    if (!vals || !ptr || !counts || !names || !np) {
        st = dk_fail(DK_ERR_NOMEM, "report.html: box plots of %d cases", n);
        goto out;
    }
    dk_sb_puts(b, "<h2>Distributions</h2>\n<p class='facts'>Box: quartiles and median; "
                  "whiskers: the furthest values within 1.5·IQR of the box; dots: values "
                  "beyond. NaN values are left out (n per label below each box).</p>\n"
                  "<div class='plots'>\n");
    for (int k = 0; k < L; k++) {
        const char *name = dk_rep_label_name(r, k);
        if (name) snprintf(names[k], sizeof names[k], "%s", name);
        else snprintf(names[k], sizeof names[k], "label %d", r->labels[k]);
        np[k] = names[k];
        ptr[k] = vals + (size_t)k * (size_t)n;
        counts[k] = n;
    }
    for (int j = 0; j < nc; j++) {
        if (!strncmp(cols[j].name, "vol_", 4) && strcmp(cols[j].name, "vol_sim")) continue;
        char title[64];
        snprintf(title, sizeof title, "%s%s", cols[j].name, unit(r, cols[j].name));
        for (int k = 0; k < L; k++) dk_rep_values(r, k, &cols[j], vals + (size_t)k * (size_t)n);
        dk_svg_boxplot(b, title, np, ptr, counts, L);
    }
    dk_sb_puts(b, "</div>\n");
out:
    free(vals), free(ptr), free(counts), free(names), free(np);
    return st;
}

static void num_cell(dk_sbuf *b, double x) {
    dk_sb_puts(b, "<td data-v='");
    dk_sb_num(b, x);
    dk_sb_puts(b, "'>");
    if (isnan(x)) dk_sb_puts(b, "NaN");
    else fmt(b, x);
    dk_sb_puts(b, "</td>");
}

static void case_table(dk_sbuf *b, const dk_rep_run *r) {
    int nc;
    const dk_metric_column *cols = dk_metric_columns(&nc);
    dk_sb_puts(b, "<h2>Cases</h2>\n<p class='facts'>Click a column header to sort (NaN last); "
                  "flagged rows are shaded; report.html#sort=hd95 (or #sort=-hd95) opens "
                  "sorted.</p>\n<table id='cases'><thead><tr>"
                  "<th class='s' data-k='case'>case</th><th class='num' data-k='label'>label"
                  "</th>");
    for (int j = 0; j < nc; j++)
        dk_sb_printf(b, "<th class='num' data-k='%s'>%s%s</th>", dk_rep_col_name(r, &cols[j]),
                     dk_rep_col_name(r, &cols[j]), unit(r, cols[j].name));
    dk_sb_puts(b, "<th class='num' data-k='tp'>TP</th><th class='num' data-k='fp'>FP</th>"
                  "<th class='num' data-k='fn'>FN</th><th class='num' data-k='flagged'>flagged"
                  "</th></tr></thead><tbody>\n");
    for (int i = 0; i < r->n_cases; i++)
        for (int k = 0; k < r->n_labels; k++) {
            const dk_label_metrics *m = &r->cases[i].m[k];
            dk_sb_printf(b, "<tr%s><td class='s'>", m->flagged ? " class='flag'" : "");
            dk_sb_html(b, r->cases[i].id);
            char lt[96];
            dk_sb_printf(b, "</td><td data-v='%d'>", r->labels[k]);
            dk_sb_html(b, dk_rep_label_text(lt, sizeof lt, r, k));
            dk_sb_puts(b, "</td>");
            for (int j = 0; j < nc; j++)
                num_cell(b, *(const double *)((const char *)m + cols[j].offset));
            dk_sb_printf(b, "<td data-v='%lld'>%lld</td><td data-v='%lld'>%lld</td>"
                            "<td data-v='%lld'>%lld</td><td data-v='%d'>%s</td></tr>\n",
                         (long long)m->tp, (long long)m->tp, (long long)m->fp,
                         (long long)m->fp, (long long)m->fn, (long long)m->fn,
                         m->flagged ? 1 : 0, m->flagged ? "yes" : "");
        }
    dk_sb_puts(b, "</tbody></table>\n");
}

static void overlays(dk_sbuf *b, const dk_rep_run *r) {
    dk_sb_puts(b, "<h2>Overlays</h2>\n<p class='facts'>");
    dk_sb_puts(b, r->opts->image_dir ? "Image (mean of its channels) windowed to its 1st–99th "
                                       "percentile"
                                     : "Reference labels in grey (no image folder given)");
    dk_sb_puts(b, "; 3-D cases show the axial slice with the most disagreement (FP + FN over "
                  "the labels).<span class='sw' style='background:#00dc00'></span>reference"
                  "<span class='sw' style='background:#ff00ff'></span>prediction"
                  "<span class='sw' style='background:#ffd200'></span>both"
                  "</p>\n<div class='ov'>\n");
    for (int i = 0; i < r->n_cases; i++) {
        const dk_rep_case *c = &r->cases[i];
        if (!c->overlay_b64) continue;
        dk_sb_puts(b, "<figure><img alt='overlay of ");
        dk_sb_html(b, c->id);
        dk_sb_printf(b, "' width='%d' height='%d' src='data:image/png;base64,", c->overlay_w,
                     c->overlay_h);
        dk_sb_puts(b, c->overlay_b64);
        dk_sb_puts(b, "'><figcaption><b>");
        dk_sb_html(b, c->id);
        dk_sb_puts(b, "</b>");
        if (c->overlay_3d) dk_sb_printf(b, " — slice z=%lld", (long long)c->overlay_z);
        dk_sb_printf(b, "; FP+FN %lld px</figcaption></figure>\n",
                     (long long)c->overlay_disagree);
    }
    dk_sb_puts(b, "</div>\n");
}

dk_status dk_rep_write_html(const dk_rep_run *r, const char *dir) {
    double *vals = malloc((size_t)(r->n_cases ? r->n_cases : 1) * sizeof *vals);
    if (!vals) return dk_fail(DK_ERR_NOMEM, "report.html: %d cases", r->n_cases);
    dk_sbuf b = {0};
    head(&b, r);
    summary_table(&b, r, vals);
    free(vals);
    dk_status st = box_plots(&b, r);
    if (st == DK_OK) {
        case_table(&b, r);
        overlays(&b, r);
        dk_sb_printf(&b, "<script>%s</script>\n</body></html>\n", script);
        char path[4096];
        st = dk_rep_join(path, sizeof path, dir, "report.html");
        if (st == DK_OK) st = dk_sb_write_file(&b, path);
    }
    dk_sb_free(&b);
    return st;
}

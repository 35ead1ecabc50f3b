"""The static HTML page of the report: relative links to the PNGs, inline CSS, no JavaScript."""

from __future__ import annotations

import datetime as _dt
from html import escape
from typing import Any

from .collect import LABELS, RunData
from .quality import sections_html
from .units import format_length_nm

__all__ = ["render_html"]

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       color: #1a1a1a; background: #fafafa; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 28px; margin-bottom: 4px; }
h2 { font-size: 21px; border-bottom: 2px solid #d0d0d0; padding-bottom: 4px; margin-top: 40px; }
p.meta { color: #555; margin-top: 0; }
figure { margin: 16px 0; background: white; padding: 12px; border: 1px solid #e0e0e0; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #444; font-size: 14px; margin-top: 8px; }
table { border-collapse: collapse; margin: 12px 0; background: white; font-size: 15px; }
th, td { border: 1px solid #d0d0d0; padding: 6px 12px; text-align: right; }
th { background: #eef1f5; }
td.l, th.l { text-align: left; }
tr.best td { font-weight: 600; }
.notes { background: #fff8e1; border-left: 4px solid #ffbf00; padding: 8px 16px; }
code { background: #eef1f5; padding: 1px 4px; }
"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:.4g}"
    return escape(_readable(v))


def _readable(v: Any) -> str:
    """A mapping or list as ``key: value, ...`` text (no raw JSON blobs in the tables)."""
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_readable(x)}" for k, x in v.items()) or "–"
    if isinstance(v, list | tuple):
        return ", ".join(_readable(x) for x in v) or "–"
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.4g}"
    if v is None:
        return "–"
    return str(v)


def _fixed(v: Any, decimals: int) -> str:
    return "–" if not isinstance(v, int | float) else f"{v:.{decimals}f}"


def _figure(figs: dict[str, str], key: str, caption: str) -> str:
    if key not in figs:
        return ""
    name = escape(figs[key])
    return (f'<figure><img src="{name}" alt="{escape(caption)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _kv_table(d: dict[str, Any], title: str | None = None) -> str:
    rows = "".join(f'<tr><td class="l">{escape(str(k))}</td><td class="l">{_fmt(v)}</td></tr>'
                   for k, v in d.items())
    head = f"<h3>{escape(title)}</h3>" if title else ""
    return (f'{head}<table><tr><th class="l">parameter</th><th class="l">value</th></tr>'
            f"{rows}</table>")


def _methods_table(metrics: dict[str, Any]) -> str:
    per = metrics["methods"]
    unit = metrics["profile"]["distance_unit"]
    has_truth = any(m.get("psnr") is not None for m in per.values())
    cols = [("CNR", "cnr", 2)]
    if has_truth:
        cols += [("PSNR (dB)", "psnr", 2), ("SSIM", "ssim", 3)]
    head = "".join(f"<th>{c}</th>" for c, _, _ in cols)
    head += f"<th>FWHM ({unit})</th><th>peaks</th><th>structure in difference</th>"
    best_key = "psnr" if has_truth else "cnr"
    vals = [m.get(best_key) for m in per.values() if m.get(best_key) is not None]
    best = max(vals) if vals else None
    rows = []
    for key, m in per.items():
        cls = ' class="best"' if best is not None and m.get(best_key) == best else ""
        cells = "".join(f"<td>{_fixed(m.get(k), n)}</td>" for _, k, n in cols)
        fw = m.get("fwhm")
        fw_s = "–" if fw is None else f"{fw:.3g} ± {m.get('fwhm_std') or 0:.2g}"
        sf = m.get("structure_fraction")
        cells += (f"<td>{fw_s}</td><td>{m.get('n_peaks', 0)}</td>"
                  f"<td>{'–' if sf is None else f'{100 * sf:.2f} %'}</td>")
        rows.append(f'<tr{cls}><td class="l">{escape(LABELS.get(key, key))}</td>{cells}</tr>')
    return (f'<table><tr><th class="l">method</th>{head}</tr>{"".join(rows)}</table>')


def _timings(run: RunData) -> str:
    stages = (run.run_record or {}).get("stages") or {}
    if not stages:
        return "<p>No stage timings (run.json absent or empty).</p>"
    rows = []
    for name, s in stages.items():
        if not isinstance(s, dict):
            continue
        extra = s.get("summary") or s.get("throughput") or ""
        rows.append(f'<tr><td class="l">{escape(name)}</td><td>{_fmt(s.get("seconds"))}</td>'
                    f'<td class="l">{_fmt(extra)}</td></tr>')
    if "report" not in stages:
        rows.append('<tr><td class="l">report</td><td>–</td><td class="l">this page, being '
                    "written (its time is recorded in run.json)</td></tr>")
    total = sum(float(s.get("seconds") or 0) for s in stages.values() if isinstance(s, dict))
    rows.append(f'<tr><td class="l"><strong>total</strong></td><td><strong>{_fmt(total)}'
                '</strong></td><td class="l">stages recorded in run.json</td></tr>')
    return ('<table><tr><th class="l">stage</th><th>seconds</th><th class="l">summary</th></tr>'
            + "".join(rows) + "</table>")


def _parameters(run: RunData) -> str:
    parts = []
    if run.recon_attrs:
        parts.append(_kv_table(run.recon_attrs, "Reconstruction (recon.zarr attributes)"))
    if run.model_meta:
        meta = {k: v for k, v in run.model_meta.items() if not isinstance(v, dict | list)}
        for k in ("network_params", "normalization", "normalisation"):
            if isinstance(run.model_meta.get(k), dict):
                meta[k] = run.model_meta[k]
        parts.append(_kv_table(meta, "Model (model/metadata.json)"))
    if run.run_config:
        for section, values in run.run_config.items():
            if isinstance(values, dict):
                parts.append(_kv_table(values, f"Configuration: {section}"))
    return "".join(parts) or "<p>No parameters recorded.</p>"


def _frc_noise_text(metrics: dict[str, Any]) -> tuple[str, str]:
    """The sentences under the FRC and noise figures (empty without halves)."""
    frc_h = (metrics.get("frc") or {}).get("halves") or {}
    if frc_h:
        res = (format_length_nm(frc_h['resolution_nm']) if frc_h.get("resolution_nm") else
               f"{frc_h['resolution_px']:.3g} px" if frc_h.get("resolution_px") else
               "beyond Nyquist (no crossing)")
        frc_txt = (f"<p>Half-bit resolution of one half reconstruction "
                   f"(split 0 vs split 1): <strong>{res}</strong>.</p>")
    else:
        frc_txt = ""
    noise = metrics.get("noise") or {}
    noise_txt = (f"<p>Mean noise std of one half: <strong>{_fmt(noise.get('mean_std'))}</strong>; "
                 f"local range {_fmt(noise.get('map_min'))} – {_fmt(noise.get('map_max'))} "
                 f"(max/min {_fmt(noise.get('map_max_over_min'))}).</p>" if noise else "")
    return frc_txt, noise_txt


def _figures(metrics: dict[str, Any], figs: dict[str, str], run: RunData) -> str:
    """The figure sections of the page (Fig. 3-6, FRC, noise, differences, masks, tables)."""
    unit = metrics["profile"]["distance_unit"]
    prof = metrics["profile"]
    frc_txt, noise_txt = _frc_noise_text(metrics)
    return f"""<h2>Slices (Fig. 4)</h2>
{_figure(figs, 'slices_xy', 'xy slice of every method with one shared grey scale; the yellow '
         'square is zoomed below, the dashed cyan line is the line profile.')}
{_figure(figs, 'slices_yz', 'yz slice through the profile centre, shared grey scale, zoom below.')}

<h2>Line profiles and FWHM (Fig. 5)</h2>
<p>Profile from (z, y, x) = {tuple(round(v, 1) for v in prof['start_zyx'])} to
{tuple(round(v, 1) for v in prof['end_zyx'])}, {escape(prof['source'])}; {prof['polarity']}ima
fitted. Peaks are located on the reference ({escape(str(metrics['reference']))}) profile and every
method is fitted at the same peaks.</p>
{_figure(figs, 'profiles',
         f'Line profiles (shifted vertically) with Gaussian fits; FWHM in {unit}.')}

<h2>Power spectral density (Fig. 6)</h2>
{_figure(figs, 'psd', '1D PSD: mean Hann-windowed periodogram of 17 segments parallel to the '
         'profile. Local filters suppress high frequencies; a periodic structure gives peaks.')}

<h2>Resolution from the two halves (FRC) and noise</h2>
{frc_txt}
{_figure(figs, 'frc', 'Fourier ring correlation of the central slice, Hann-apodised, with the '
         'half-bit threshold (van Heel &amp; Schatz 2005); dotted lines mark the crossings.')}
{noise_txt}
{_figure(figs, 'noise', 'Noise of one half reconstruction from (split0 − split1)/√2: map over xy '
         '(9 px window, mean over the slab) and per slice.')}

<h2>Difference images</h2>
{_figure(figs, 'difference', 'Filtered minus unfiltered (one symmetric colour scale): a filter '
         'that removes only noise leaves no structure here.')}

<h2>Training curve (Fig. 3)</h2>
{_figure(figs, 'training', 'Training and validation loss per epoch; the star marks the best '
         'validation epoch, whose weights are kept.') or '<p>No training history.</p>'}

<h2>CNR masks</h2>
{_figure(figs, 'masks', 'Material (red) and air (blue) masks: Otsu threshold of the reference '
         'image, eroded by 2 voxels.')}

<h2>Timings per stage</h2>
{_timings(run)}

<h2>Parameters</h2>
{_parameters(run)}
<p>All numbers are in <a href="metrics.json">metrics.json</a>.</p>
"""


def render_html(metrics: dict[str, Any], figs: dict[str, str], run: RunData) -> str:
    """The page as a string (write it as ``index.html`` next to the figures)."""
    px = metrics.get("pixel_size_nm")
    notes = metrics.get("skipped") or []
    notes_html = ("<div class='notes'><strong>Not shown / skipped:</strong><ul>"
                  + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul></div>"
                  if notes else "")
    slab = metrics["slab"]
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = f"""
<h1>tomochunk comparison report</h1>
<p class="meta">Run <code>{escape(str(run.run_dir))}</code> · {when} ·
pixel size {format_length_nm(px)} ·
volume {' × '.join(map(str, run.shape))} (z, y, x) ·
central slab z {slab['z'][0]}–{slab['z'][1] - 1}, y {slab['y'][0]}–{slab['y'][1] - 1},
x {slab['x'][0]}–{slab['x'][1] - 1} ·
ground truth: {escape(str(metrics.get('truth') or 'none'))}</p>
{notes_html}

<h2>Summary (Table 1)</h2>
{_methods_table(metrics)}
<p>CNR = (I<sub>mat</sub> − I<sub>air</sub>) / √(½(σ<sub>mat</sub>² + σ<sub>air</sub>²))
(Muhogora et al. 2008), over the material/air masks below, the same for every method.
{'PSNR/SSIM against the ground truth after a least-squares affine fit of each method to it '
 '(scale and offset do not count), over the central slab; SSIM is the mean of 2D SSIM per slice.'
 if metrics.get('truth') else ''}
FWHM: mean ± standard deviation over the peaks of the line profile of Gaussian fits
(2√(2 ln 2) σ). Structure in difference: squared correlation of (method − unfiltered) with the
{'ground truth' if metrics.get('truth') else 'method itself (no truth: indicative only)'}, i.e. the
share of the removed signal that is structure rather than noise (≈ 0 % for pure noise removal).
Bold row: best {'PSNR' if metrics.get('truth') else 'CNR'}.</p>
{sections_html(metrics, LABELS)}

{_figures(metrics, figs, run)}
"""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>tomochunk report</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")

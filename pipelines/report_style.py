"""The report's stylesheet, inlined into ``index.html`` so the page is one file plus its pictures."""

CSS = """
:root { --ink: #1f2933; --muted: #7b8794; --line: #e4e7eb; --bg: #f5f7fa; --card: #ffffff;
        --accent: #2f6fde; --good: #17a398; --bad: #e4572e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0; font-size: 28px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 34px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { margin: 0 0 6px; font-size: 15px; }
h4 { margin: 14px 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #52606d; }
code { font: 12px/1.4 "DejaVu Sans Mono", Menlo, monospace; }
.muted { color: var(--muted); font-weight: normal; }
.warn { color: var(--bad); font-weight: 600; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 12px; margin-top: 18px; }
.stat { background: var(--card); border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(31,41,51,.08);
        border-top: 4px solid var(--accent); }
.stat b { display: block; font-size: 24px; line-height: 1.15; white-space: nowrap; }
.stat span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.stat.good { border-top-color: var(--good); } .stat.bad { border-top-color: var(--bad); }
table { border-collapse: collapse; background: var(--card); width: 100%; font-size: 13px;
        box-shadow: 0 1px 3px rgba(31,41,51,.08); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; font-size: 12px; color: #52606d; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.detail { color: var(--muted); font-size: 12px; max-width: 420px; overflow-wrap: anywhere; }
tr.primary td { background: #fff6e0; font-weight: 600; }
figure { margin: 0 0 12px; }
figure img { display: block; max-width: 100%; height: auto; border-radius: 6px; background: #fff; }
figure.plot img { box-shadow: 0 1px 3px rgba(31,41,51,.08); }
figure.small img { max-width: 360px; }
figure.recon { max-width: 360px; }
figcaption { color: #52606d; font-size: 12px; margin-top: 4px; }
img.broken { outline: 3px solid var(--bad); min-height: 40px; min-width: 120px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 16px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.grow { flex: 1 1 420px; }
.card { background: var(--card); border-radius: 12px; padding: 18px 20px; margin: 0 0 22px;
        box-shadow: 0 1px 4px rgba(31,41,51,.10); }
.chips { margin: 0 0 12px; }
.chip { display: inline-block; background: #eef2f7; border-radius: 999px; padding: 2px 10px; margin: 0 6px 6px 0;
        font-size: 12px; }
.chip i { color: var(--muted); font-style: normal; }
.badge { font-size: 11px; border-radius: 4px; padding: 1px 6px; color: #fff; background: var(--muted); }
.badge.bad { background: var(--bad); }
.split { display: grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 20px; }
.story { background: #f8fafc; border-left: 4px solid var(--accent); padding: 8px 12px; margin: 0 0 8px;
         font-size: 13.5px; }
ul.subjects, ol.shots { padding-left: 0; list-style: none; margin: 0; font-size: 13px; }
ul.subjects li, ol.shots li { margin-bottom: 6px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
details { margin-top: 10px; } summary { cursor: pointer; color: #52606d; font-size: 12px; }
table.quality td { padding: 3px 10px; }
nav { margin-top: 6px; font-size: 13px; } nav a { color: var(--accent); text-decoration: none; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; text-align: center; }
"""

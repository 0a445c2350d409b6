"""The remote's one page and its style sheet, as strings (no package data to install).

Autoescaped Jinja2; no inline script or style (the answer's CSP forbids both).
"""

# ruff: noqa: E501  (the page and its style sheet are kept as written, one rule per line)
from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baclofen pump remote</title>
<link rel="stylesheet" href="/remote.css">
</head>
<body>
<header><strong>Baclofen pump remote</strong> <span class="warning">Simulation: not a medical device</span></header>
<main>
{% if answer %}<p class="answer {{ answer.outcome }}" id="answer" data-outcome="{{ answer.outcome }}">{{ answer.words }}</p>{% endif %}
{% for line in settled %}<p class="muted">{{ line }}</p>{% endfor %}
{% if status %}
<section id="status">
  <h1>Pump {{ status.serial }}</h1>
  <p class="muted">Read {{ status.at.strftime("%A %-d %B %Y %H:%M") }} (the pump's clock).</p>
  <p id="mode">{{ status.mode_words }}</p>
  <p id="reservoir">{{ status.reservoir_words }}</p>
  {% for a in status.alarms %}
  <div class="alarm" data-alarm="{{ a.kind.value }}"><strong>Alarm: {{ a.means }}</strong>
    <p>{{ a.do_now }} {{ a.call }} {{ a.emergency }}</p></div>
  {% else %}<p id="no-alarm">No alarm.</p>{% endfor %}
  <p id="bolus-words">{{ status.bolus_words }}</p>
</section>
{% elif problem %}<p class="answer unreachable" id="answer" data-outcome="{{ problem.outcome }}">{{ problem.words }}</p>
{% endif %}
<form method="post" action="/bolus">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <button type="submit" id="bolus">Give an extra dose{% if status and status.bolus_dose_ug %} ({{ "%g"|format(status.bolus_dose_ug) }} µg){% endif %}</button>
</form>
<p><a href="/">Read the pump again</a></p>
</main>
</body>
</html>
"""

CSS = """
body { margin: 0; font: 18px/1.5 system-ui, sans-serif; color: #1b2430; background: #fafbfc; }
header { background: #1d4e89; color: #fff; padding: .6rem 1rem; display: flex; gap: .6rem; flex-wrap: wrap; }
.warning { font-size: .8rem; background: #ffd166; color: #000; padding: .1rem .4rem; border-radius: 3px; }
main { padding: 1rem; max-width: 640px; margin: 0 auto; }
h1 { font-size: 1.3rem; }
.muted { color: #5b6775; font-size: .9rem; }
.answer { padding: .7rem; border-radius: 6px; background: #fff8e6; border-left: 6px solid #8a5700; }
.answer.done { background: #e3f4e8; border-left-color: #2e7d32; }
.answer.uncertain, .answer.unreachable, .answer.rejected { background: #fdecee; border-left-color: #a4001d; }
.alarm { background: #fdecee; border-left: 6px solid #a4001d; padding: .5rem .8rem; margin: .5rem 0; }
button { background: #1d4e89; color: #fff; border: 0; border-radius: 6px; padding: .8rem 1.1rem; font: inherit; width: 100%; }
"""

_ENV = Environment(loader=DictLoader({"remote.html": PAGE}), autoescape=select_autoescape(["html"]))


def render_page(**context: object) -> str:
    return _ENV.get_template("remote.html").render(**context)

"""Lambda entry points: one thin module per function (parse the event, call core code, format)."""

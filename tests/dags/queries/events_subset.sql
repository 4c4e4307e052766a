-- Rendered by Jinja (template_ext=.sql): the operator reads this file, not a string.
SELECT id, name, amount_decimal, event_ts
FROM default.events
WHERE id < {{ params.limit }};

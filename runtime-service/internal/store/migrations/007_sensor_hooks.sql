-- Which kernel hook a node's sensor runs its open program on (lsm, fexit or tracepoint), and why the cheaper
-- ones were refused (runtrust.sensor.open_hook and runtrust.sensor.hooks_refused; docs/records.md). Empty for
-- sensors that do not say (older collectors, file_opens off).
ALTER TABLE sensor_health
    ADD COLUMN open_hook     text NOT NULL DEFAULT '',
    ADD COLUMN hooks_refused text NOT NULL DEFAULT '';

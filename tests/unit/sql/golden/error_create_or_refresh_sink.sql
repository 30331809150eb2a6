CREATE OR REFRESH SINK s OPTIONS (format => 'kafka');

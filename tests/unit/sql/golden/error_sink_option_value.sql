CREATE SINK s OPTIONS (format => kafka);

-- Run once by the postgres image on an empty data directory: one database per service.
CREATE DATABASE orders_command;
CREATE DATABASE orders_query;

-- The seed's storefront database (storefront.md): schema sales, customers and orders, serial
-- keys, orders.customer_id -> customers.id. Deterministic data; sizes from psql variables
-- :customers and :orders (e.g. psql -v customers=10000 -v orders=100000 -f storefront.sql).
CREATE SCHEMA sales;
CREATE TABLE sales.customers (
    id serial PRIMARY KEY,
    username varchar(50) NOT NULL,
    first_name varchar(50),
    last_name varchar(50)
);
CREATE TABLE sales.orders (
    id serial PRIMARY KEY,
    customer_id int REFERENCES sales.customers (id),
    order_date date,
    order_timestamp timestamp,
    product_details text,
    quantity int,
    unit_cost numeric(6,2),
    unit_weight real
);
CREATE INDEX orders_order_date ON sales.orders (order_date);

SELECT setseed(0.42);
INSERT INTO sales.customers (username, first_name, last_name)
SELECT 'user' || g,
       (ARRAY['Ana','Bo','Chloé','Dmitri','Eve','Fatima','Günter','Hiro'])[1 + g % 8],
       (ARRAY['Smith','O''Brien','Nguyễn','Müller','García','Kowalski'])[1 + g % 6]
FROM generate_series(1, :customers) g;
INSERT INTO sales.orders (customer_id, order_date, order_timestamp, product_details, quantity, unit_cost, unit_weight)
SELECT 1 + floor(random() * :customers)::int,
       d::date,
       d,
       'product ' || (g % 500) || ': ' || md5(g::text),
       1 + g % 9,
       round((random() * 999)::numeric, 2),
       (random() * 50)::real
FROM (SELECT g, timestamp '2020-01-01' + random() * interval '1500 days' AS d
      FROM generate_series(1, :orders) g) s;
ANALYZE;

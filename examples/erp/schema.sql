-- Odoo-shaped schema (mrp_production, product_product) for the floorstream ERP example (SQLite).
CREATE TABLE product_product (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE mrp_production (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    product_id         INTEGER NOT NULL REFERENCES product_product(id),
    product_qty        NUMERIC(16,4) NOT NULL,
    state              TEXT NOT NULL DEFAULT 'draft',
    date_planned_start TIMESTAMP,
    create_date        TIMESTAMP NOT NULL,
    write_date         TIMESTAMP NOT NULL
);
CREATE INDEX mrp_production_write_date ON mrp_production (write_date, id);

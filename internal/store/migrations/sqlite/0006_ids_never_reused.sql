-- The highest id each table has ever given (store.insertRow): SQLite's INTEGER PRIMARY KEY gives
-- the id of a deleted last row again, and tokens and policies name rows by id.
CREATE TABLE id_high_water (
	tbl  TEXT PRIMARY KEY,
	last INTEGER NOT NULL
);
INSERT INTO id_high_water (tbl, last) SELECT 'registries', COALESCE(MAX(id), 0) FROM registries;
INSERT INTO id_high_water (tbl, last) SELECT 'users', COALESCE(MAX(id), 0) FROM users;
INSERT INTO id_high_water (tbl, last) SELECT 'groups', COALESCE(MAX(id), 0) FROM groups;
INSERT INTO id_high_water (tbl, last) SELECT 'service_principals', COALESCE(MAX(id), 0) FROM service_principals;
INSERT INTO id_high_water (tbl, last) SELECT 'scope_maps', COALESCE(MAX(id), 0) FROM scope_maps;
INSERT INTO id_high_water (tbl, last) SELECT 'tokens', COALESCE(MAX(id), 0) FROM tokens;

-- Payloads are stored compressed (lz4 block after a 4-byte little-endian
-- length; see store::Payload), and `payload` is then ''. Rows stored
-- before this migration keep their text in `payload` and no payload_lz4.
ALTER TABLE deliveries ADD COLUMN payload_lz4 BYTEA;

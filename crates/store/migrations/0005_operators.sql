-- Site operators: users who may see the whole node's state (the operator
-- overview). Granted and revoked on the server's command line only.
ALTER TABLE users ADD COLUMN operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1));

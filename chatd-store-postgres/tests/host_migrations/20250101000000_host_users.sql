-- A host application's own migration: it knows nothing of chatd.
CREATE TABLE users (id UUID PRIMARY KEY, name TEXT NOT NULL);

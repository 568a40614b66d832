-- Each tenant secret is bound to its tenant and name: AES-256-GCM with
-- "ngx_tenant/1" NUL tenant NUL name as associated data, so a ciphertext
-- copied to another tenant's row, or to another name, no longer decrypts.
-- Rows written before (bound = false) are re-encrypted bound by the
-- provisioner when it starts; the key never reaches the registry.
ALTER TABLE tenant_secrets ADD COLUMN bound boolean NOT NULL DEFAULT false;

{{ ledger_scan('sources', {'kind': 'varchar', 'url': 'varchar', 'capital': 'double', 'exported_at': 'timestamptz'}) }}

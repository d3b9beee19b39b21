"""liqbot's I/O side: config, market data, store, scheduler, commands, charts, chat adapters."""

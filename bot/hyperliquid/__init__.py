"""The confirmed layer (issue 17): real open positions and their exchange-computed liquidation
prices on Hyperliquid, shown beside the estimate and never mixed into it."""

"""The bot audits itself: a receipt after every break (:mod:`bot.audit.receipts`) and a live
accuracy scoreboard (:mod:`bot.audit.evaluations` records and scores, :mod:`bot.audit.scoreboard`
aggregates), both stored in the store's audit tables (:mod:`bot.audit.tables`)."""

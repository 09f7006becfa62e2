"""Shared text helpers with no operators: word splitting and lexicons, n-gram hashes,
MinHash signatures / LSH / shard state, phrase matching, texts named in parameters,
score thresholds. Operators import these; nothing here is an operator."""

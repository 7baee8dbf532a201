"""One reader for every input: captured traffic and labels, in every format and location."""

"""Read models: plain data the console reads from the store in workers."""

"""The target table: its SQL, reading the server's answers, publishing and counting."""

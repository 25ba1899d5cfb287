"""Realistic migration histories in other tools' layouts, written the way those tools' users write them."""

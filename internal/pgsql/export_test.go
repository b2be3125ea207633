package pgsql

// FoldTable is the fold table's characters and what each folds to, for
// the tests outside the package.
func FoldTable() map[rune]string { return foldMap }

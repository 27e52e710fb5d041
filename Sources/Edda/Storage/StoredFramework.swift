/// The `framework` column's value for rows this library writes: how stores tell this library's
/// instances from those of its Python, Go and Ruby siblings in a shared database.
package enum StoredFramework {
    package static let name = "swift"
}

/// How an activity is retried when an attempt fails.
///
/// The delay before attempt *k+1* is `min(initialInterval × backoffCoefficient^(k-1), maxInterval)`.
/// Retrying stops when `maxAttempts` attempts were made, when `maxDuration` has passed since
/// the first attempt, or when the error is not retryable; the activity then throws
/// ``RetryExhaustedError``. A ``TerminalError`` is never retried.
///
/// A policy set on the activity wins over the app's
/// ``EddaApp/Configuration/defaultRetryPolicy``, which wins over ``default``.
///
/// ```swift
/// var policy = RetryPolicy.default
/// policy.maxAttempts = 3
/// policy.nonRetryableErrors = .types(ValidationError.self)
/// ```
public struct RetryPolicy: Sendable {
    /// The delay before the second attempt. Default 1 s.
    public var initialInterval: Duration
    /// The factor the delay grows by after each failed attempt. Default 2.
    public var backoffCoefficient: Double
    /// The longest delay between two attempts. Default 60 s.
    public var maxInterval: Duration
    /// The most attempts, the first included; `nil` for no limit. Default 5.
    public var maxAttempts: Int?
    /// The longest time from the first attempt after which no new attempt starts; `nil` for no
    /// limit. Default 300 s.
    public var maxDuration: Duration?
    /// The errors that may be retried. Default: all.
    public var retryableErrors: ErrorFilter
    /// Errors never retried even if `retryableErrors` matches them. Default: none.
    public var nonRetryableErrors: ErrorFilter

    /// A policy; every parameter defaults to the reference's default.
    public init(
        initialInterval: Duration = .seconds(1),
        backoffCoefficient: Double = 2.0,
        maxInterval: Duration = .seconds(60),
        maxAttempts: Int? = 5,
        maxDuration: Duration? = .seconds(300),
        retryableErrors: ErrorFilter = .all,
        nonRetryableErrors: ErrorFilter = .none
    ) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maxInterval = maxInterval
        self.maxAttempts = maxAttempts
        self.maxDuration = maxDuration
        self.retryableErrors = retryableErrors
        self.nonRetryableErrors = nonRetryableErrors
    }

    /// 1 s initial delay, ×2, at most 60 s apart, 5 attempts, 300 s in all.
    public static let `default` = RetryPolicy()
    /// 0.1 s initial delay, ×1.5, at most 10 s apart, 10 attempts, 60 s in all.
    public static let aggressive = RetryPolicy(
        initialInterval: .milliseconds(100), backoffCoefficient: 1.5, maxInterval: .seconds(10),
        maxAttempts: 10, maxDuration: .seconds(60))
    /// 5 s initial delay, ×2, at most 300 s apart, 3 attempts, 900 s in all.
    public static let conservative = RetryPolicy(
        initialInterval: .seconds(5), backoffCoefficient: 2.0, maxInterval: .seconds(300),
        maxAttempts: 3, maxDuration: .seconds(900))
    /// 1 s initial delay, ×2, at most 60 s apart, with no limit on attempts or time.
    public static let infinite = RetryPolicy(maxAttempts: nil, maxDuration: nil)
    /// A single attempt: any failure is final.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Whether `error` may be retried under this policy. ``TerminalError`` never is, nor is
    /// ``InvalidIdentifierError`` (the same identifier would be refused again), nor an ``EddaUsageError``
    /// (a misuse, such as transactional work for another database, that no retry mends).
    public func isRetryable(_ error: any Error) -> Bool {
        if error is TerminalError || error is InvalidIdentifierError || error is EddaUsageError { return false }
        if nonRetryableErrors.matches(error) { return false }
        return retryableErrors.matches(error)
    }

    /// The delay after failed attempt number `attempt` (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let initial = initialInterval.seconds
        let raw = initial * pow(backoffCoefficient, Double(max(attempt - 1, 0)))
        return .seconds(min(raw, maxInterval.seconds))
    }
}

/// A set of errors, for ``RetryPolicy/retryableErrors`` and ``RetryPolicy/nonRetryableErrors``.
public struct ErrorFilter: Sendable {
    let matches: @Sendable (any Error) -> Bool

    /// Matches errors for which `predicate` returns true.
    public static func matching(_ predicate: @escaping @Sendable (any Error) -> Bool) -> ErrorFilter {
        ErrorFilter(matches: predicate)
    }

    /// Matches every error.
    public static let all = ErrorFilter { _ in true }
    /// Matches no error.
    public static let none = ErrorFilter { _ in false }

    /// Matches errors that are instances of any of `types` (subclasses and protocol conformers
    /// included).
    public static func types(_ types: any Error.Type...) -> ErrorFilter {
        let checks: [@Sendable (any Error) -> Bool] = types.map { type in
            { error in Self.isInstance(error, of: type) }
        }
        return ErrorFilter { error in checks.contains { $0(error) } }
    }

    private static func isInstance<T>(_ error: any Error, of type: T.Type) -> Bool {
        error is T
    }

}

extension Duration {
    /// The duration in seconds, as a `Double`. (For the package's other modules and tests too.)
    package var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

import Foundation

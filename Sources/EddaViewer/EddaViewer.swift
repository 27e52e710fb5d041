import Edda
import EddaDiagram
import Foundation
import Hummingbird
import NIOCore

/// The Edda web viewer: server-rendered pages over an app's database, mountable into any
/// Hummingbird router.
///
/// ```swift
/// let router = Router()
/// EddaViewer(app: app).addRoutes(to: router.group("viewer"), basePath: "/viewer")
/// ```
///
/// Pages (relative to where the routes are mounted):
/// - `/`: the instance list, with search (workflow name or instance ID), status, date range and
///   input key/value filters, a page size and cursor pagination.
/// - `/workflow/{id}`: one instance: info, input, output or error, the `continued_from` chain, a
///   diagram coloured by execution, the details of every step, compensations and the history
///   timeline. `/workflow/{id}/diagram.svg` and `/workflow/{id}/diagram.mmd` export the diagram.
/// - `/start`: forms generated from the registered workflows' ``InputSchema``s.
///
/// Reading needs no JavaScript. State changes (cancel, start) are `POST` forms; they are refused
/// in ``Configuration/readOnly`` mode and, when ``Configuration/bearerToken`` is set, need the
/// token — as an `Authorization: Bearer` header, or a cookie set by the `/login` page. Pages
/// are sent with a strict Content-Security-Policy.
public struct EddaViewer: Sendable {
    /// How the viewer behaves.
    public struct Configuration: Sendable {
        /// The title in the header and the browser tab.
        public var title = "Edda Workflow Viewer"
        /// Refuse every change (cancel, start): the viewer only reads.
        public var readOnly = false
        /// When set (and not empty), cancel and start need this token.
        public var bearerToken: String?
        /// Who cancellations are recorded as made by.
        public var cancelledBy = "viewer"
        /// Static flows by workflow name (from `EddaVisualizer`), drawn with the executed path
        /// highlighted. Workflows without one are drawn from their history.
        public var flows: [String: WorkflowFlow] = [:]
        /// Origins (`https://ops.example.com`) whose pages may post changes, besides the
        /// viewer's own host: for a viewer behind a proxy that rewrites `Host`.
        public var trustedOrigins: [String] = []
        /// The largest form body accepted, in bytes.
        public var maxFormSize = 256 * 1024

        /// The defaults: read-write, no token, diagrams from history.
        public init() {}
    }

    /// The app whose database is shown, and which cancels and starts instances.
    public let app: EddaApp
    /// How the viewer behaves.
    public let configuration: Configuration

    /// A viewer over `app`.
    public init(app: EddaApp, configuration: Configuration = Configuration()) {
        self.app = app
        self.configuration = configuration
    }

    /// Adds the viewer's routes to `router`. `basePath` is the path `router` is mounted at
    /// (for example `"/viewer"` for `router.group("viewer")`), used to build links.
    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>, basePath: String = "") {
        let pages = Pages(viewer: self, basePath: basePath.hasSuffix("/") ? String(basePath.dropLast()) : basePath)
        router.get { request, _ in await pages.respond(request) { try await pages.list(request, context: $0) } }
        router.get("workflow/:instance_id") { request, context in
            await pages.respond(request) {
                try await pages.detail(context.parameters.get("instance_id"), request: request, context: $0)
            }
        }
        router.get("workflow/:instance_id/diagram.svg") { request, context in
            await pages.respond(request) { _ in try await pages.diagram(context.parameters.get("instance_id"), mermaid: false) }
        }
        router.get("workflow/:instance_id/diagram.mmd") { request, context in
            await pages.respond(request) { _ in try await pages.diagram(context.parameters.get("instance_id"), mermaid: true) }
        }
        router.post("workflow/:instance_id/cancel") { request, context in
            await pages.respond(request) { try await pages.cancel(request, context.parameters.get("instance_id"), context: $0) }
        }
        router.get("start") { request, _ in await pages.respond(request) { try await pages.startForm(request, context: $0) } }
        router.post("start") { request, _ in await pages.respond(request) { try await pages.start(request, context: $0) } }
        router.get("login") { request, _ in await pages.respond(request) { pages.loginForm(message: nil, context: $0) } }
        router.post("login") { request, _ in await pages.respond(request) { try await pages.login(request, context: $0) } }
        router.get("theme") { request, _ in pages.theme(request) }
    }
}

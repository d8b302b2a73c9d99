/// The overview's per-trigger sparkline: an inline SVG of stacked bars, one per minute of
/// the last hour (2xx green, failed attempts red). Presentation attributes only, no `style`,
/// so the strict CSP needs no 'unsafe-inline'.
enum ThroughputChart {
    static let width = 180
    static let height = 32

    static func svg(_ series: EventBrowser.Throughput?) -> Markup {
        let delivered = series?.delivered ?? Array(repeating: 0, count: EventBrowser.minutes)
        let failed = series?.failed ?? Array(repeating: 0, count: EventBrowser.minutes)
        let peak = max(1, zip(delivered, failed).map { $0 + $1 }.max() ?? 1)
        let barWidth = Double(width) / Double(delivered.count)
        var bars: [Markup] = []
        for index in delivered.indices {
            let x = Double(index) * barWidth
            let okHeight = Double(delivered[index]) / Double(peak) * Double(height)
            let failHeight = Double(failed[index]) / Double(peak) * Double(height)
            if okHeight > 0 {
                bars.append(rect(x: x, y: Double(height) - okHeight, width: barWidth, height: okHeight, fill: "#2e8540"))
            }
            if failHeight > 0 {
                bars.append(
                    rect(x: x, y: Double(height) - okHeight - failHeight, width: barWidth, height: failHeight, fill: "#c62828"))
            }
        }
        let total = delivered.reduce(0, +)
        let failures = failed.reduce(0, +)
        let label = "last hour: \(total) delivered, \(failures) failed attempts, peak \(peak)/min"
        return """
            <svg class="spark" viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)" role="img" aria-label="\(label)">\
            <title>\(label)</title><rect x="0" y="0" width="\(width)" height="\(height)" fill="#f3f4f6"/>\(bars)</svg>
            """
    }

    private static func rect(x: Double, y: Double, width: Double, height: Double, fill: String) -> Markup {
        Markup(trusted: "<rect x=\"\(format(x))\" y=\"\(format(y))\" width=\"\(format(max(width - 0.5, 0.5)))\" height=\"\(format(height))\" fill=\"\(fill)\"/>")
    }

    private static func format(_ value: Double) -> String {
        String((value * 10).rounded() / 10)
    }
}

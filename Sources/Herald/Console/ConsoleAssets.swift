/// The console's stylesheet, compiled into the binary: no CDN, no build step, no file to
/// find at run time. Served at /console/assets/console.css, the only style the CSP allows.
enum ConsoleAssets {
    static let stylesheet = """
        *{box-sizing:border-box}
        body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
        header{background:#24292f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
        header a{color:#fff;text-decoration:none;font-weight:600}
        header .brand{font-size:1.1rem;margin-right:1rem}
        header form{margin-left:auto}
        header button{background:transparent;color:#d0d7de;border:1px solid #57606a;border-radius:4px;padding:.2rem .6rem;cursor:pointer}
        main{padding:1rem 1.2rem;max-width:1300px}
        h1{font-size:1.3rem;margin:.2rem 0 1rem}
        h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
        table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
        th,td{padding:.4rem .6rem;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
        th{background:#f6f8fa;font-weight:600;white-space:nowrap}
        td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
        a{color:#0969da}
        code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
        pre{background:#fff;border:1px solid #d0d7de;padding:.8rem;overflow:auto;max-height:32rem;white-space:pre-wrap;word-break:break-word}
        .preview{max-width:28rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;color:#57606a}
        .badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:12px;font-weight:600}
        .pending{background:#fff8c5;color:#7d4e00}.delivered{background:#dafbe1;color:#116329}
        .failed{background:#ffebe9;color:#a40e26}.in_flight{background:#ddf4ff;color:#0550ae}
        form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin-bottom:1rem;background:#fff;border:1px solid #d0d7de;padding:.7rem}
        form.filters label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
        input,select{font:inherit;padding:.3rem .4rem;border:1px solid #d0d7de;border-radius:4px}
        input.q{width:26rem}
        button.primary,a.button{background:#1f883d;color:#fff;border:0;border-radius:5px;padding:.4rem .9rem;font-weight:600;cursor:pointer;text-decoration:none;display:inline-block}
        button.danger{background:#cf222e;color:#fff;border:0;border-radius:5px;padding:.4rem .9rem;font-weight:600;cursor:pointer}
        .actions{display:flex;gap:.6rem;align-items:center;margin:.6rem 0}
        .notice{background:#ddf4ff;border:1px solid #54aeff;padding:.5rem .8rem;margin-bottom:1rem}
        .error{background:#ffebe9;border:1px solid #ff8182;padding:.5rem .8rem;margin-bottom:1rem}
        dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;background:#fff;border:1px solid #d0d7de;padding:.7rem}
        dl.facts dt{color:#57606a}dl.facts dd{margin:0}
        .pager{display:flex;gap:1rem;margin:.7rem 0}
        .muted{color:#57606a}
        .attempt{background:#fff;border:1px solid #d0d7de;padding:.6rem .8rem;margin:.6rem 0}
        .attempt h3{font-size:.95rem;margin:0 0 .4rem}
        table.headers th{width:16rem;background:#fff}
        .login{max-width:24rem;margin:4rem auto;background:#fff;border:1px solid #d0d7de;padding:1.4rem}
        .login input{width:100%;margin:.4rem 0 .8rem}
        footer{color:#57606a;font-size:12px;padding:1rem 1.2rem}
        """
}

// Exact outlines of the synthetic shapes as polygons (x0, y0, x1, y1, ...) centred on the origin within
// half-extents (hw, hh), optionally rotated. Circles are 32-gons; a ring is one polygon with a
// zero-width slit (outer circle, a bridge to the inner circle traversed backwards, the bridge back), so
// its shoelace area is outer minus inner and the nonzero fill leaves the hole empty — the way a COCO
// polygon can carry a hole.
namespace Engine.Data.Synthetic;

public static class Shapes
{
    public const int CircleVertices = 32;

    /// <summary>The outline of <paramref name="shape"/> with half-extents (<paramref name="hw"/>, <paramref name="hh"/>) rotated by
    /// <paramref name="angle"/> radians about the origin.</summary>
    public static double[] Outline(ShapeKind shape, double hw, double hh, double angle = 0)
    {
        var p = shape switch
        {
            ShapeKind.Circle => Ellipse(hw, hh, reverse: false),
            ShapeKind.Square => [-hw, -hh, hw, -hh, hw, hh, -hw, hh],
            ShapeKind.Triangle => [0, -hh, hw, hh, -hw, hh],
            ShapeKind.Cross => Cross(hw, hh, 0.36),
            ShapeKind.Ring => Ring(hw, hh, 0.55),
            ShapeKind.Star => Star(hw, hh, 5, 0.45),
            ShapeKind.Diamond => [0, -hh, 0.62 * hw, 0, 0, hh, -0.62 * hw, 0],
            ShapeKind.Hexagon => Regular(hw, hh, 6),
            _ => throw new ArgumentOutOfRangeException(nameof(shape), shape, "Shapes.Outline: unknown shape."),
        };
        if (angle != 0)
        {
            var (s, c) = Math.SinCos(angle);
            for (var i = 0; i < p.Length; i += 2)
                (p[i], p[i + 1]) = (c * p[i] - s * p[i + 1], s * p[i] + c * p[i + 1]);
        }
        return p;
    }

    private static double[] Ellipse(double rx, double ry, bool reverse)
    {
        var p = new double[2 * CircleVertices];
        for (var i = 0; i < CircleVertices; i++)
        {
            var t = 2 * Math.PI * (reverse ? -i : i) / CircleVertices;
            p[2 * i] = rx * Math.Cos(t);
            p[2 * i + 1] = ry * Math.Sin(t);
        }
        return p;
    }

    private static double[] Ring(double rx, double ry, double innerScale)
    {
        var outer = Ellipse(rx, ry, reverse: false);
        var inner = Ellipse(rx * innerScale, ry * innerScale, reverse: true);
        // O0..O31, O0, I0, I(-1)..I(-31), I0: the bridge O0→I0 and back I0→O0 (the closing edge) cancel.
        return [.. outer, outer[0], outer[1], .. inner, inner[0], inner[1]];
    }

    private static double[] Cross(double hw, double hh, double armFraction)
    {
        var ax = hw * armFraction;
        var ay = hh * armFraction;
        return [-ax, -hh, ax, -hh, ax, -ay, hw, -ay, hw, ay, ax, ay, ax, hh, -ax, hh, -ax, ay, -hw, ay, -hw, -ay, -ax, -ay];
    }

    private static double[] Star(double hw, double hh, int points, double innerScale)
    {
        var p = new double[4 * points];
        for (var i = 0; i < 2 * points; i++)
        {
            var r = i % 2 == 0 ? 1.0 : innerScale;
            var t = -Math.PI / 2 + Math.PI * i / points;
            p[2 * i] = hw * r * Math.Cos(t);
            p[2 * i + 1] = hh * r * Math.Sin(t);
        }
        return p;
    }

    private static double[] Regular(double hw, double hh, int sides)
    {
        var p = new double[2 * sides];
        for (var i = 0; i < sides; i++)
        {
            var t = 2 * Math.PI * i / sides;
            p[2 * i] = hw * Math.Cos(t);
            p[2 * i + 1] = hh * Math.Sin(t);
        }
        return p;
    }
}
